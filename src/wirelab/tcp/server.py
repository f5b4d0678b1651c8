"""Chapter 3 TCP servers (transport layer, RFC 9293): the sixteen exchange and the upper echo.

Both serve many clients at once on one event loop, so a client that sends half a message and
goes quiet holds only its own connection, until its idle timeout closes it. Each connection
is logged with its *socket name* (our end) and *peer name* (theirs): the listening socket
has only a socket name; every accepted socket has both (F14).

* :func:`open_sixteen_server` reads exactly 16 bytes, answers ``Farewell, client`` and
  closes (F13). A peer that closes early costs one log line,
  ``peer closed after N of 16 bytes``.
* :func:`open_upper_server` echoes everything upper-cased (F15). It waits for each write to
  drain before reading more (backpressure), so a client that never reads fills the kernel
  buffers in both directions, and the book's deadlock really happens.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from wirelab.net.addresses import format_address
from wirelab.net.limits import DEFAULT_IDLE_TIMEOUT, RECV_CHUNK
from wirelab.net.server import ConnectionServer, last_word, peer_name
from wirelab.tcp._core import MESSAGE_SIZE, REPLY

__all__ = [
    "DEFAULT_MAX_ECHO",
    "UpperSettings",
    "open_sixteen_server",
    "open_upper_server",
]

log = logging.getLogger(__name__)

#: Bytes one connection may have echoed before the upper server closes it: 256 MiB.
DEFAULT_MAX_ECHO = 256 << 20


def _names(writer: asyncio.StreamWriter) -> tuple[str, str]:
    sockname = writer.get_extra_info("sockname")
    return (format_address(sockname) if sockname else "?", peer_name(writer))


async def open_sixteen_server(
    host: str | None, port: int | str, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT
) -> ConnectionServer:
    """Listen on ``host``:``port`` and answer each 16-byte message with ``Farewell, client``.

    Args:
        host: address to bind (loopback unless you mean otherwise).
        port: port number or service name; 0 picks a free one.
        idle_timeout: seconds a client may take to send its 16 bytes.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sockname, peer = _names(writer)
        log.info("connection: socket name %s, peer name %s", sockname, peer)
        try:
            async with asyncio.timeout(idle_timeout):
                message = await reader.readexactly(MESSAGE_SIZE)
        except asyncio.IncompleteReadError as exc:
            log.warning("%s: peer closed after %d of 16 bytes", peer, len(exc.partial))
            return
        except TimeoutError:
            log.warning("%s: no 16-byte message within %g s; closing", peer, idle_timeout)
            return
        log.info("%s: incoming sixteen-octet message %r", peer, message)
        await last_word(reader, writer, REPLY, max_discard=MESSAGE_SIZE, seconds=idle_timeout)
        log.info("%s: reply sent, socket closed", peer)

    return await ConnectionServer.open(handle, host, port, name="tcp sixteen")


@dataclass(frozen=True)
class UpperSettings:
    """Limits of the upper-casing echo.

    Attributes:
        max_bytes: bytes one connection may send before it is closed.
        idle_timeout: seconds without progress (nothing read, nothing drained) before the
            connection is closed.
        chunk: bytes read at a time (the book read 1024).
        buffer_size: ``SO_RCVBUF``/``SO_SNDBUF`` of the connections, or ``None`` for the
            kernel's default (which Linux grows on demand).
    """

    max_bytes: int = DEFAULT_MAX_ECHO
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    chunk: int = RECV_CHUNK
    buffer_size: int | None = None


async def open_upper_server(
    host: str | None, port: int | str, settings: UpperSettings | None = None
) -> ConnectionServer:
    """Listen on ``host``:``port`` and echo every byte upper-cased, with backpressure."""
    cfg = settings or UpperSettings()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sockname, peer = _names(writer)
        log.info("connection: socket name %s, peer name %s", sockname, peer)
        total = 0
        while True:
            try:
                async with asyncio.timeout(cfg.idle_timeout):
                    data = await reader.read(cfg.chunk)
            except TimeoutError:
                log.warning("%s: nothing to read for %g s; closing", peer, cfg.idle_timeout)
                return
            if not data:
                break
            total += len(data)
            if total > cfg.max_bytes:
                log.warning("%s: over the limit of %d bytes; closing", peer, cfg.max_bytes)
                return
            writer.write(data.upper())
            try:
                async with asyncio.timeout(cfg.idle_timeout):
                    await writer.drain()  # backpressure: no more reading until this is sent
            except TimeoutError:
                log.warning(
                    "%s: the peer read nothing for %g s after %d bytes; closing",
                    peer,
                    cfg.idle_timeout,
                    total,
                )
                # Abort, not close: a graceful close would wait forever to flush the echo
                # the peer is not reading, and the peer (the book's deadlock client has no
                # timeout) would wait forever too. The reset releases it.
                writer.transport.abort()
                return
        log.info("%s: echoed %d bytes upper-cased; closing", peer, total)

    options: tuple[tuple[int, int, int], ...] = ()
    if cfg.buffer_size is not None:
        options = (
            (socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.buffer_size),
            (socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.buffer_size),
        )
    return await ConnectionServer.open(handle, host, port, name="tcp upper", sock_options=options)
