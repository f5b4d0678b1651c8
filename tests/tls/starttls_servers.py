"""Test fixtures: STARTTLS servers for the inspector and client tests (not wirelab code).

SMTP is aiosmtpd, an independent implementation. POP3, IMAP and FTP are minimal responders
written here from the RFCs (RFC 2595 §4, RFC 3501 §6.2.1, RFC 4217 §4): they speak just enough
of each protocol to reach the TLS handshake, then echo one line over TLS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .tls_helpers import one_shot


@contextmanager
def aiosmtpd_server(tls_context: ssl.SSLContext | None) -> Iterator[tuple[str, int]]:
    """aiosmtpd on 127.0.0.1, port 0, offering STARTTLS when given a context."""
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP

    sock = socket.create_server(("127.0.0.1", 0))
    address = sock.getsockname()[:2]
    ready = threading.Event()
    holder: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Sink(), hostname="mail.example.com", tls_context=tls_context, timeout=10),
            sock=sock,
        )
        stop = asyncio.Event()
        holder.append((loop, stop))
        ready.set()
        try:
            await stop.wait()
        finally:
            server.close()
            await server.wait_closed()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="tls-test-smtp")
    thread.start()
    try:
        assert ready.wait(10), "aiosmtpd did not start"
        yield address
    finally:
        if holder:
            loop, stop = holder[0]
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        sock.close()


def _line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 1024:
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _after_tls(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        return
    with tls:
        try:
            line = _line(tls)
            if line:
                tls.sendall(b"over TLS: " + line)
        except (ssl.SSLError, OSError):
            pass


def pop3_handler(ctx: ssl.SSLContext, *, inject: bytes = b"") -> Callable[[socket.socket], None]:
    """RFC 1939 greeting, RFC 2449 CAPA listing STLS, RFC 2595 STLS."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(b"+OK POP3 test responder ready\r\n")
        while line := _line(conn).strip().upper():
            if line == b"CAPA":
                conn.sendall(b"+OK Capability list follows\r\nUSER\r\nSTLS\r\nUIDL\r\n.\r\n")
            elif line == b"STLS":
                conn.sendall(b"+OK Begin TLS negotiation\r\n" + inject)
                _after_tls(conn, ctx)
                return
            elif line == b"QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            else:
                conn.sendall(b"-ERR unknown command\r\n")

    return handle


def imap_handler(ctx: ssl.SSLContext) -> Callable[[socket.socket], None]:
    """RFC 3501: untagged OK greeting, CAPABILITY with STARTTLS, tagged OK to STARTTLS."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(b"* OK IMAP4rev1 test responder ready\r\n")
        while line := _line(conn).strip():
            tag, _, command = line.partition(b" ")
            if command.upper() == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n")
                conn.sendall(tag + b" OK CAPABILITY completed\r\n")
            elif command.upper() == b"STARTTLS":
                conn.sendall(tag + b" OK Begin TLS negotiation now\r\n")
                _after_tls(conn, ctx)
                return
            else:
                conn.sendall(tag + b" BAD unknown command\r\n")

    return handle


def ftp_handler(ctx: ssl.SSLContext) -> Callable[[socket.socket], None]:
    """RFC 959 multi-line 220 greeting, RFC 4217 AUTH TLS answered with 234."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(b"220-FTP test responder\r\n welcome\r\n220 ready\r\n")
        while line := _line(conn).strip().upper():
            if line == b"AUTH TLS":
                conn.sendall(b"234 AUTH TLS successful\r\n")
                _after_tls(conn, ctx)
                return
            conn.sendall(b"502 command not implemented\r\n")

    return handle


def silent_after_greeting(greeting: bytes) -> Callable[[socket.socket], None]:
    """Says hello, then never answers (a stalled dialogue)."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(greeting)
        conn.settimeout(3)
        try:
            while conn.recv(1024):
                pass
        except OSError:
            pass

    return handle


__all__ = [
    "aiosmtpd_server",
    "ftp_handler",
    "imap_handler",
    "one_shot",
    "pop3_handler",
    "silent_after_greeting",
]
