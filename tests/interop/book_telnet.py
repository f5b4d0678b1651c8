"""Test-only peers with the behaviour of the book's chapter 16 Telnet scripts (not their code).

``python book_telnet.py telnet_login|telnet_codes HOST PORT USER PASSWORD``: what
``telnet_login.py`` and ``telnet_codes.py`` do against ``localhost:23`` with ``brandon`` and a
password written in, with the host, port and credentials taken from the command line. They
use the old blocking ``telnetlib`` (the standard library's until 3.13, else the copy that
telnetlib3 ships), send ``\\n`` line ends, treat an ``expect`` timeout as success (the book's
bug), and ``telnet_codes`` sends its terminal type unprompted.
"""

from __future__ import annotations

import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import telnetlib as tn  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python 3.13+
        from telnetlib3 import telnetlib as tn  # type: ignore[no-redef,unused-ignore]


def telnet_login(host: str, port: int, user: str, password: str) -> None:
    session = tn.Telnet(host, port)
    session.read_until(b"login:")  # no time limit, as the book
    session.write(user.encode() + b"\n")
    session.read_until(b"assword:")
    session.write(password.encode() + b"\n")
    index, _match, _before = session.expect([rb"Login incorrect", rb"\$"], 10)
    if index == 0:
        print("Username and password failed - giving up")
        return
    session.write(b"exec uptime\n")
    print(session.read_all().decode("ascii"))


def telnet_codes(host: str, port: int, user: str, password: str) -> None:
    iac, do, dont, will, wont = tn.IAC, tn.DO, tn.DONT, tn.WILL, tn.WONT

    def on_option(sock, command, option):  # type: ignore[no-untyped-def]
        if command == do and option == tn.TTYPE:
            sock.sendall(iac + will + tn.TTYPE)
            print('Sending terminal type "mypython"')
            sock.sendall(iac + tn.SB + tn.TTYPE + b"\0" + b"mypython" + iac + tn.SE)
        elif command in (do, dont):
            print("Will not", ord(option))
            sock.sendall(iac + wont + option)
        elif command in (will, wont):
            print("Do not", ord(option))
            sock.sendall(iac + dont + option)

    session = tn.Telnet(host, port)
    session.set_option_negotiation_callback(on_option)
    session.read_until(b"login:", 5)
    session.write(user.encode() + b"\n")
    session.read_until(b"assword:", 5)
    session.write(password.encode() + b"\n")
    index, _match, _before = session.expect([rb"Login incorrect", rb"\$"], 10)
    if index == 0:
        print("Username and password failed - giving up")
        return
    session.write(b"exec echo My terminal type is $TERM\n")
    print(session.read_all().decode("ascii"))


if __name__ == "__main__":
    program, host, port, user, password = sys.argv[1:6]
    {"telnet_login": telnet_login, "telnet_codes": telnet_codes}[program](
        host, int(port), user, password
    )
