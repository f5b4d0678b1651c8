"""Test-only peers that behave as the book's chapter 14 and 15 scripts do (written here from
their documented behaviour, not copied): ``book_mail.py PROGRAM hostname username [folder]``.

PROGRAM is one of ``popconn.py``, ``apopconn.py``, ``mailbox.py``, ``download-and-delete.py``
(chapter 14, poplib) or ``open_imaplib.py``, ``open_imap.py``, ``folder_info.py``,
``folder_summary.py`` (chapter 15, imaplib and IMAPClient). The password is read with
``getpass`` (from standard input when there is no terminal), and the answers of
download-and-delete from standard input, as in the book. The one change: the book's scripts
use the protocols' standard ports (995, 993), and the lab's are shifted, so the port comes
from ``$BOOK_MAIL_PORT``. As in the book, ``POP3_SSL`` and ``IMAP4_SSL`` get no context (no
certificate check on Python 3.11: the book's weakness, kept), and IMAPClient's default
context trusts the system's CA paths (the tests point ``SSL_CERT_FILE`` at the lab CA).
``folder_summary.py`` indexes IMAPClient's answer with bytes keys, as IMAPClient 1.0 and
later return them (the book's era used str keys), and fetches the ids SEARCH ALL gives (the
book's ``fetch('1:*')`` is refused by IMAPClient 3 before it reaches a server).
"""

# ruff: noqa: UP031  (the book's printf-style output, kept)
from __future__ import annotations

import email
import getpass
import imaplib
import os
import poplib
import sys


def _port() -> int:
    return int(os.environ["BOOK_MAIL_PORT"])


def _pop(program: str, hostname: str, user: str) -> None:
    passwd = getpass.getpass()
    p = poplib.POP3_SSL(hostname, _port())
    try:
        if program == "apopconn.py":
            p.apop(user, passwd)
        else:
            p.user(user)
            p.pass_(passwd)
    except poplib.error_proto as e:
        print("Login failed:", e)
    else:
        if program in ("popconn.py", "apopconn.py"):
            print("You have %d messages totaling %d bytes" % p.stat())
        elif program == "mailbox.py":
            for listing in p.list()[1]:
                number, size = listing.decode("ascii").split()
                print("Message %s has %s bytes" % (number, size))
        else:
            _download_and_delete(p)
    finally:
        p.quit()


def _download_and_delete(p: poplib.POP3) -> None:
    for listing in p.list()[1]:
        number, size = listing.decode("ascii").split()
        print("Message", number, "(size is", size, "bytes):")
        print()
        lines = p.top(number, 0)[1]
        message = email.message_from_string("\n".join(line.decode("ascii") for line in lines))
        for header in "From", "To", "Subject", "Date":
            if header in message:
                print(header + ":", message[header])
        print()
        print("Read this message [ny]?")
        if input().lower().startswith("y"):
            lines = p.retr(number)[1]
            text = "\n".join(line.decode("ascii") for line in lines)
            message = email.message_from_string(text)
            print("-" * 72)
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    print(part.get_payload())
                    print("-" * 72)
        print()
        print("Delete this message [ny]?")
        if input().lower().startswith("y"):
            p.dele(number)
            print("Deleted.")


def _imap(program: str, hostname: str, user: str, folder: str | None) -> None:
    if program == "open_imaplib.py":
        m = imaplib.IMAP4_SSL(hostname, _port())
        m.login(user, getpass.getpass())
        print("Capabilities:", m.capabilities)
        print("Listing mailboxes ")
        status, data = m.list()
        print("Status:", repr(status))
        print("Data:")
        for datum in data:
            print(repr(datum))
        m.logout()
        return
    from imapclient import IMAPClient

    c = IMAPClient(hostname, port=_port(), ssl=True)
    try:
        c.login(user, getpass.getpass())
    except c.Error as e:
        print("Could not log in:", e)
        sys.exit(1)
    try:
        if program == "open_imap.py":
            print("Capabilities:", c.capabilities())
            print("Listing mailboxes:")
            for flags, delimiter, name in c.list_folders():
                print("  %-30s%s %s" % (name, delimiter, flags))
        elif program == "folder_info.py":
            for k, v in list(c.select_folder("INBOX", readonly=True).items()):
                print("%s: %r" % (k, v))
        else:
            c.select_folder(folder or "INBOX", readonly=True)
            everything = c.search("ALL")  # the book's fetch("1:*"): IMAPClient 3 takes ids
            for message_id, message in list(c.fetch(everything, ["BODY.PEEK[]"]).items()):
                e = email.message_from_bytes(message[b"BODY[]"])
                print(message_id, e["From"])
                payload = e.get_payload()
                if isinstance(payload, list):
                    print("  Parts:", " ".join(part.get_content_type() for part in payload))
                else:
                    print("  ", " ".join(payload[:60].split()), "...")
    finally:
        c.logout()


def main(argv: list[str]) -> None:
    program, args = argv[0], argv[1:]
    if program.startswith(("open_", "folder_")):
        _imap(program, args[0], args[1], args[2] if len(args) > 2 else None)
    else:
        _pop(program, args[0], args[1])


if __name__ == "__main__":
    main(sys.argv[1:])
