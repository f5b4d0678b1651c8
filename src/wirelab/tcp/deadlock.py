"""The chapter 3 deadlock (transport layer, RFC 9293): why a client must read while it writes.

The client streams ``bytecount`` bytes of ``capitalize this!`` to the upper-casing echo
server. Three ways to do it (F15, F16):

* ``naive`` - the book's order: send everything, *then* read. The server echoes as it reads,
  but nobody reads the echo, so the client's receive buffer fills, then the server's send
  buffer, then the server stops reading, its receive buffer fills, then the client's send
  buffer: both sides wait on each other forever. With a few megabytes it stalls; a progress
  watchdog notices and raises :class:`Stalled` instead of hanging.
* ``halfclose`` - the book's client exactly: send everything, ``shutdown(SHUT_WR)`` so the
  server sees end-of-file, then read the echo until the server closes. The half-close tells
  the server the request is over, but it cannot make room in full buffers: it only works
  while the whole echo fits in the buffers along the way. Large sizes stall like ``naive``.
* ``concurrent`` - send and receive at the same time, one non-blocking socket under a
  ``selectors`` loop: whatever the size, data keeps moving.

Every byte of the echo is checked against the upper-cased chunk as it arrives.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wirelab.errors import Broken, LocalProtocolError, Timeout, TransportError
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT, RECV_CHUNK
from wirelab.tcp._core import CHUNK, EchoChecker, round_up

__all__ = [
    "DEFAULT_STALL",
    "MAX_BYTECOUNT",
    "MODES",
    "EchoReport",
    "Mode",
    "Progress",
    "Stalled",
    "deadlock",
]

Mode = Literal["naive", "concurrent", "halfclose"]
MODES: tuple[Mode, ...] = ("naive", "concurrent", "halfclose")

#: Seconds without a byte moving, in either direction, before we call it a deadlock.
DEFAULT_STALL = 2.0
#: Largest stream the client will send: 1 GiB.
MAX_BYTECOUNT = 1 << 30

#: ``progress(sent, received)``, called as bytes move.
Progress = Callable[[int, int], None]

# 64 KiB of the repeated chunk: we send slices of it, so memory stays flat at any size.
_BLOCK = CHUNK * (RECV_CHUNK // len(CHUNK))


class Stalled(Timeout):
    """No byte moved for ``stall`` seconds: the client and server are deadlocked.

    Attributes:
        sent: bytes the client had sent.
        received: bytes of echo it had read.
        total: bytes it meant to send.
        stall: the watchdog's limit in seconds.
    """

    def __init__(self, sent: int, received: int, total: int, stall: float) -> None:
        text = f"deadlock: no progress for {stall:g} s after sending {sent} of {total} bytes"
        if received:
            text += f" (and reading {received} back)"
        super().__init__(text)
        self.sent = sent
        self.received = received
        self.total = total
        self.stall = stall


@dataclass(frozen=True)
class EchoReport:
    """A finished run: everything sent came back upper-cased.

    Attributes:
        mode: how the client moved the data.
        bytecount: bytes sent (the request rounded up to whole chunks).
        received: bytes of echo read and checked.
        seconds: wall time of the exchange.
        local: the client's socket name.
        server: the server's address (the client socket's peer name).
    """

    mode: Mode
    bytecount: int
    received: int
    seconds: float
    local: str
    server: str

    @property
    def verified(self) -> bool:
        """True: every byte came back, upper-cased (a mismatch raises instead)."""
        return self.received == self.bytecount

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "mode": self.mode,
            "bytecount": self.bytecount,
            "received": self.received,
            "verified": self.verified,
            "seconds": round(self.seconds, 4),
            "local": self.local,
            "server": self.server,
        }


def _broken(exc: OSError, what: str, sent: int, received: int, total: int) -> TransportError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
        return Broken(
            f"the server broke the connection while {what} ({reason}) after sending "
            f"{sent} of {total} bytes and reading {received}"
        )
    return TransportError(f"cannot keep {what}: {reason}")


def _piece(sent: int, total: int) -> memoryview:
    start = sent % len(_BLOCK)
    return memoryview(_BLOCK)[start : start + min(len(_BLOCK) - start, total - sent)]


def deadlock(
    host: str,
    port: int | str,
    bytecount: int,
    mode: Mode = "concurrent",
    *,
    stall: float = DEFAULT_STALL,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    progress: Progress | None = None,
) -> EchoReport:
    """Stream ``bytecount`` bytes (rounded up to 16) to the upper echo server and read it back.

    Args:
        host: the upper-casing echo server.
        port: its port number or service name.
        bytecount: bytes to send; rounded up to whole 16-byte ``capitalize this!`` chunks.
        mode: ``"naive"``, ``"halfclose"`` or ``"concurrent"`` (see the module docs).
        stall: seconds without progress that count as a deadlock.
        connect_timeout: seconds allowed to connect.
        progress: called with ``(sent, received)`` as bytes move.

    Raises:
        Stalled: no byte moved for ``stall`` seconds (the deadlock, detected).
        RemoteProtocolError: an echoed byte was not the upper-cased chunk.
        Broken: the server closed or reset the connection before echoing everything.
        LocalProtocolError: the byte count is negative or over :data:`MAX_BYTECOUNT`.
        NameResolutionError, ConnectError: the server could not be reached.
    """
    if mode not in MODES:
        raise LocalProtocolError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    total = round_up(bytecount)
    if total > MAX_BYTECOUNT:
        raise LocalProtocolError(f"{total} bytes is over the limit of {MAX_BYTECOUNT}")
    report = progress or (lambda sent, received: None)
    began = time.monotonic()
    with connect_tcp(host, port, timeout=connect_timeout) as sock:
        local = format_address(sock.getsockname())
        server = format_address(sock.getpeername())
        checker = EchoChecker(total)
        if mode == "concurrent":
            _concurrent(sock, total, checker, stall, report)
        else:
            _send_all(sock, total, stall, report)
            if mode == "halfclose":
                sock.shutdown(socket.SHUT_WR)  # "that is all": the server sees end-of-file
            _read_back(sock, total, checker, stall, report, to_eof=mode == "halfclose")
    return EchoReport(mode, total, checker.received, time.monotonic() - began, local, server)


def _send_all(sock: socket.socket, total: int, stall: float, report: Progress) -> None:
    """Send everything before reading anything (what the book does)."""
    sock.settimeout(stall)  # each send must move some bytes within ``stall`` seconds
    sent = 0
    while sent < total:
        try:
            sent += sock.send(_piece(sent, total))
        except TimeoutError as exc:
            raise Stalled(sent, 0, total, stall) from exc
        except OSError as exc:
            raise _broken(exc, "sending", sent, 0, total) from exc
        report(sent, 0)


def _read_back(
    sock: socket.socket,
    total: int,
    checker: EchoChecker,
    stall: float,
    report: Progress,
    *,
    to_eof: bool,
) -> None:
    sock.settimeout(stall)
    while True:
        if checker.complete and not to_eof:
            return
        try:
            data = sock.recv(RECV_CHUNK)
        except TimeoutError as exc:
            raise Stalled(total, checker.received, total, stall) from exc
        except OSError as exc:
            raise _broken(exc, "reading", total, checker.received, total) from exc
        if not data:
            if checker.complete:
                return
            raise Broken(f"the server closed after echoing {checker.received} of {total} bytes")
        checker.feed(data)
        report(total, checker.received)


def _concurrent(
    sock: socket.socket, total: int, checker: EchoChecker, stall: float, report: Progress
) -> None:
    """Send and receive at once: one non-blocking socket, woken for whichever it can do."""
    sock.setblocking(False)
    sent = 0
    with selectors.DefaultSelector() as selector:
        interest = selectors.EVENT_READ | (selectors.EVENT_WRITE if total else 0)
        selector.register(sock, interest)
        if not total:
            sock.shutdown(socket.SHUT_WR)
        while True:
            events = selector.select(timeout=stall)
            if not events:
                raise Stalled(sent, checker.received, total, stall)
            mask = events[0][1]
            if mask & selectors.EVENT_WRITE:
                try:
                    sent += sock.send(_piece(sent, total))
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise _broken(exc, "sending", sent, checker.received, total) from exc
                if sent == total:
                    sock.shutdown(socket.SHUT_WR)  # done sending; keep reading the echo
                    selector.modify(sock, selectors.EVENT_READ)
            if mask & selectors.EVENT_READ:
                try:
                    data = sock.recv(RECV_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise _broken(exc, "reading", sent, checker.received, total) from exc
                if not data:
                    if checker.complete:
                        return
                    raise Broken(
                        f"the server closed after echoing {checker.received} of {total} bytes"
                    )
                checker.feed(data)
            report(sent, checker.received)
