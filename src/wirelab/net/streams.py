"""Stream adapters: the framers of :mod:`wirelab.net.framing` over real sockets and asyncio.

This is the seam where the operating system's errors become wirelab's (the tree is drawn in
:mod:`wirelab.errors`): :func:`map_os_error` classifies an ``OSError`` once, for every module,
and everything here raises with ``raise ... from exc`` so the original error stays attached.

* :func:`recv_exactly` loops until it has ``n`` bytes (one ``recv`` may return any part of
  what was sent) and raises :class:`~wirelab.errors.Broken` if the peer closes first.
* :func:`recv_until_eof` reads a whole reply that ends when the peer closes, with a limit.
* :class:`FramedSocket` sends and receives framed messages on a blocking socket, always with
  ``sendall`` (the book's ``blocks.py`` used ``send``, which may write only part).
* :func:`read_message` does the same on asyncio streams.

Timeouts come from the socket (``settimeout``) for blocking code, and from the caller
(``asyncio.timeout``) for asyncio code.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterator
from typing import Literal

from wirelab.errors import (
    Broken,
    Closed,
    ConnectError,
    ConnectionRefused,
    NameResolutionError,
    RemoteProtocolError,
    Timeout,
    TLSError,
    TransportError,
)
from wirelab.net.addresses import format_address
from wirelab.net.framing import END, NEED_DATA, Framer, Sentinel
from wirelab.net.limits import DEFAULT_MAX_MESSAGE, RECV_CHUNK

__all__ = [
    "FramedSocket",
    "map_os_error",
    "read_message",
    "recv_exactly",
    "recv_until_eof",
]

#: errno values meaning the peer or the network tore down an established connection.
_BROKEN_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ESHUTDOWN, errno.ENOTCONN}
)
#: errno values meaning no path to the peer exists (routing, interface, address).
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    }
)


def map_os_error(exc: OSError, what: str) -> TransportError:
    """Classify an ``OSError`` as the matching :class:`~wirelab.errors.TransportError`.

    The result's message reads ``network failure: <what>: <reason>``, and its ``__cause__``
    is already ``exc``; still raise it with ``raise map_os_error(exc, ...) from exc``.

    ===========================================================  ==========================
    ``exc``                                                      result
    ===========================================================  ==========================
    ``socket.gaierror``, ``socket.herror``                       ``NameResolutionError``
    ``ssl.SSLEOFError`` (closed without TLS close_notify)        ``Broken``
    other ``ssl.SSLError`` (handshake, certificate, record)      ``TLSError``
    ``TimeoutError`` (= ``socket.timeout``), ``ETIMEDOUT``       ``Timeout``
    ``ConnectionRefusedError``, ``ECONNREFUSED``                 ``ConnectionRefused``
    ``ECONNRESET``, ``EPIPE``, ``ECONNABORTED``, ``ESHUTDOWN``,  ``Broken``
    ``ENOTCONN``
    ``EBADF`` (the socket was closed on our side)                ``Closed``
    ``EHOSTUNREACH``, ``ENETUNREACH``, ``EHOSTDOWN``,            ``ConnectError``
    ``ENETDOWN``, ``EADDRNOTAVAIL``, ``EAFNOSUPPORT``
    anything else (``EMFILE``, ``ENOBUFS`` ...)                  ``TransportError``
    ===========================================================  ==========================

    Args:
        exc: the error the operating system (or ``ssl``) raised.
        what: what we were doing, as a phrase: ``"connecting to 127.0.0.1:1060"``,
            ``"sending to 127.0.0.1:1060"``.

    Returns:
        The wirelab error, not raised.
    """
    error = _classify(exc, f"network failure: {what}")
    error.__cause__ = exc
    return error


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno) if isinstance(exc.errno, int) else None
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def _classify(exc: OSError, prefix: str) -> TransportError:
    code = exc.errno
    if isinstance(exc, socket.gaierror | socket.herror):
        return NameResolutionError(f"{prefix}: name lookup failed: {_reason(exc)}")
    if isinstance(exc, ssl.SSLEOFError):
        return Broken(f"{prefix}: the peer closed the connection without ending TLS")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSError(f"{prefix}: certificate verification failed: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"{prefix}: TLS failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError) or code == errno.ETIMEDOUT:
        return Timeout(f"{prefix}: timed out")
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return ConnectionRefused(f"{prefix}: connection refused (nothing listens there)")
    if isinstance(exc, ConnectionError) or code in _BROKEN_ERRNOS:
        return Broken(f"{prefix}: connection broken: {_reason(exc)}")
    if code == errno.EBADF:
        return Closed(f"{prefix}: the socket is already closed")
    if code in _UNREACHABLE_ERRNOS:
        return ConnectError(f"{prefix}: cannot reach the peer: {_reason(exc)}")
    return TransportError(f"{prefix}: {_reason(exc)}")


def _peer(sock: socket.socket) -> str:
    """The peer's address for messages, or ``"the peer"`` when it has none to show."""
    try:
        name = sock.getpeername()
    except OSError:
        return "the peer"
    if isinstance(name, tuple):
        return format_address(name)
    return str(name) or "the peer"


def _recv(sock: socket.socket, size: int) -> bytes:
    try:
        return sock.recv(size)
    except OSError as exc:
        raise map_os_error(exc, f"receiving from {_peer(sock)}") from exc


def recv_exactly(sock: socket.socket, n: int, *, max_size: int = DEFAULT_MAX_MESSAGE) -> bytes:
    """Receive exactly ``n`` bytes from a stream socket, however the network splits them.

    Args:
        sock: a connected stream socket; its timeout applies to each ``recv``.
        n: how many bytes to receive.
        max_size: refuse an ``n`` above this before allocating anything (``n`` is often a
            length the peer announced).

    Raises:
        RemoteProtocolError: ``n`` is over ``max_size``.
        Broken: the peer closed after fewer than ``n`` bytes, or reset the connection.
        Timeout: one ``recv`` waited longer than the socket's timeout.
        TransportError: another failure, classified by :func:`map_os_error`.
    """
    if n < 0:
        raise ValueError(f"cannot receive {n} bytes")
    if n > max_size:
        raise RemoteProtocolError(f"asked to receive {n} bytes; the limit is {max_size}")
    buf = bytearray(n)
    got = 0
    with memoryview(buf) as view:
        while got < n:
            try:
                count = sock.recv_into(view[got:], n - got)
            except OSError as exc:
                where = f"receiving from {_peer(sock)} (after {got} of {n} bytes)"
                raise map_os_error(exc, where) from exc
            if count == 0:
                raise Broken(f"peer closed after {got} of {n} bytes")
            got += count
    return bytes(buf)


def recv_until_eof(sock: socket.socket, *, max_size: int = DEFAULT_MAX_MESSAGE) -> bytes:
    """Receive everything the peer sends until it closes (or shuts down) its side.

    Args:
        sock: a connected stream socket; its timeout applies to each ``recv``.
        max_size: the most bytes accepted; one byte more fails, so memory stays bounded.

    Raises:
        RemoteProtocolError: the peer sent more than ``max_size`` bytes.
        Broken, Timeout, TransportError: as classified by :func:`map_os_error`.
    """
    buf = bytearray()
    while True:
        data = _recv(sock, min(RECV_CHUNK, max_size + 1 - len(buf)))
        if not data:
            return bytes(buf)
        buf += data
        if len(buf) > max_size:
            raise RemoteProtocolError(f"peer sent more than {max_size} bytes before closing")


def _step(framer: Framer) -> bytes | Literal[Sentinel.NEED_DATA] | None:
    """Ask ``framer`` for its next event, for the adapters: END becomes None.

    The adapters call this after every ``receive_data``, so a framer complaint once end of
    file has been fed can only be about a message cut short: that becomes :class:`Broken`
    (the peer broke the connection). Any other complaint stays a ``RemoteProtocolError``.
    """
    try:
        event = framer.next_message()
    except RemoteProtocolError as exc:
        if framer.eof:
            raise Broken(str(exc)) from exc
        raise
    return None if event is END else event


class FramedSocket:
    """Framed messages over a connected, blocking stream socket.

    The socket stays the caller's: this class never closes it. Its timeout (``settimeout``)
    applies to each ``recv`` and ``sendall``.

    Args:
        sock: a connected stream socket (TCP, TLS-wrapped, or one end of a socketpair).
        framer: a fresh framer; this object feeds it everything it receives.
        chunk: bytes asked of the kernel per ``recv``.
    """

    def __init__(self, sock: socket.socket, framer: Framer, *, chunk: int = RECV_CHUNK) -> None:
        self._sock = sock
        self._framer = framer
        self._chunk = chunk

    @property
    def sock(self) -> socket.socket:
        """The underlying socket."""
        return self._sock

    @property
    def framer(self) -> Framer:
        """The framer that holds what has been received but not yet returned."""
        return self._framer

    def send_message(self, message: bytes) -> None:
        """Frame ``message`` and send all of it.

        Raises:
            LocalProtocolError: the framer refused the message (too long, bad content).
            Broken, Timeout, TransportError: as classified by :func:`map_os_error`.
        """
        data = self._framer.frame(message)
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise map_os_error(exc, f"sending to {_peer(self._sock)}") from exc

    def recv_message(self) -> bytes | None:
        """Return the next message, or None once the peer has closed at a message boundary.

        Raises:
            Broken: the peer closed in the middle of a message, or reset the connection.
            RemoteProtocolError: the peer broke the framing (a message over the limit).
            Timeout, TransportError: as classified by :func:`map_os_error`.
        """
        while True:
            event = _step(self._framer)
            if event is not NEED_DATA:
                return event
            self._framer.receive_data(_recv(self._sock, self._chunk))

    def __iter__(self) -> Iterator[bytes]:
        """Yield messages until the peer closes cleanly."""
        while (message := self.recv_message()) is not None:
            yield message


async def read_message(reader: asyncio.StreamReader, framer: Framer) -> bytes | None:
    """Return the next message from an asyncio stream, or None at a clean end of file.

    Bound the wait with ``asyncio.timeout`` around the call.

    Raises:
        Broken: the peer closed in the middle of a message, or reset the connection.
        RemoteProtocolError: the peer broke the framing (a message over the limit).
        TransportError: another failure, classified by :func:`map_os_error`.
    """
    while True:
        event = _step(framer)
        if event is not NEED_DATA:
            return event
        try:
            data = await reader.read(RECV_CHUNK)
        except OSError as exc:
            raise map_os_error(exc, "receiving a message") from exc
        framer.receive_data(data)
