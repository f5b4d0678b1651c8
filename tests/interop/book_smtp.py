"""Test-only peers that behave as the book's five chapter 13 scripts do (written here from
their documented behaviour, not copied): ``book_smtp.py PROGRAM server fromaddr toaddr...``.

PROGRAM is ``simple.py``, ``debug.py``, ``ehlo.py``, ``login.py`` or ``tls.py``. As in the
book: port 25 unless the server is given as ``host:port`` (smtplib's own parsing), no timeout,
a message built by string formatting with ``\\n`` line ends (smtplib turns them into CRLF),
the same printed lines and exit codes. ``tls.py`` trusts the system's default CA paths, so
the tests point ``SSL_CERT_FILE`` at the lab CA; it does not check the host name (the book's
weakness, kept).
"""

from __future__ import annotations

import getpass
import smtplib
import socket
import ssl
import sys


def _message(program: str, fromaddr: str, toaddrs: list[str]) -> str:
    return (
        f"To: {', '.join(toaddrs)}\nFrom: {fromaddr}\nSubject: Test Message from simple.py\n\n"
        f"Hello,\n\nThis is a test message sent to you from the {program} program\n"
        "in Foundations of Python Network Programming.\n"
    )


def _greet(conn: smtplib.SMTP, typo: bool) -> bool:
    code = conn.ehlo()[0]
    esmtp = 200 <= code <= 299
    if not esmtp:
        code = conn.helo()[0]
        if not 200 <= code <= 299:
            print("Remove" if typo else "Remote", "server refused HELO; code:", code)
            sys.exit(1)
    return esmtp


def main(argv: list[str]) -> None:
    program = argv[0]
    if len(argv) < 4:
        print(f"usage: {program} server fromaddr toaddr [toaddr...]")
        sys.exit(2)
    server, fromaddr, toaddrs = argv[1], argv[2], argv[3:]
    message = _message(program, fromaddr, toaddrs)
    if program == "simple.py":  # no error handling at all
        conn = smtplib.SMTP(server)
        conn.sendmail(fromaddr, toaddrs, message)
        conn.quit()
        print(f"Message successfully sent to {len(toaddrs)} recipient(s)")
        return
    if program == "login.py":
        print("Enter username: ")
        username = sys.stdin.readline().strip()
        password = getpass.getpass("Enter password: ")
    try:
        conn = smtplib.SMTP(server)
        if program == "debug.py":
            conn.set_debuglevel(1)
        elif program == "ehlo.py":
            esmtp = _greet(conn, typo=False)
            if esmtp and conn.has_extn("size"):
                print("Maximum message size is", conn.esmtp_features["size"])
                if len(message) > int(conn.esmtp_features["size"]):  # characters, as the book
                    print("Message too large; aborting.")
                    sys.exit(1)
        elif program == "login.py":
            try:
                conn.login(username, password)
            except smtplib.SMTPException as exc:
                print("Authentication failed:", exc)
                sys.exit(1)
        elif program == "tls.py":
            esmtp = _greet(conn, typo=True)
            if esmtp and conn.has_extn("starttls"):
                print("Negotiating TLS....")
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False  # the book's weakness: no host name check
                context.set_default_verify_paths()
                context.verify_mode = ssl.CERT_REQUIRED
                conn.starttls(context=context)
                if not 200 <= conn.ehlo()[0] <= 299:
                    print("Couldn't EHLO after STARTTLS")
                    sys.exit(5)
                print("Using TLS connection.")
            else:
                print("Server does not support TLS; using normal connection.")
        conn.sendmail(fromaddr, toaddrs, message)
    except (socket.gaierror, OSError, smtplib.SMTPException) as exc:
        print(" *** Your message may not have been sent!")
        print(exc)
        sys.exit(1)
    print(f"Message successfully sent to {len(toaddrs)} recipient(s)")
    conn.quit()


if __name__ == "__main__":
    main(sys.argv[1:])
