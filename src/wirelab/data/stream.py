"""Chapter 5: framing by end-of-file (application layer over TCP, RFC 9293) (F23).

The simplest framing: a connection carries one message, and the end of the message is the
end of the stream. The client sends everything, then half-closes its sending side
(``shutdown(SHUT_WR)``): the server's next read returns ``b""``, end-of-file, and it knows
the message is complete. The connection is still open the other way, so our server answers
with one line, ``received N bytes, sha256 ...``, and closes: a reply lets the client check
that every byte arrived.

The book's ``streamer.py`` sends nothing back: its server half-closes at once, and its client
shuts down its reading side and never reads. Both work with ours, byte for byte: the book's
client never sees our summary (it has stopped reading), and our client, meeting end-of-file
with no summary, reports that nothing was verified instead of failing.

Limits: the server refuses a message over ``max_size`` bytes (``error: ...``) and drops a
client that goes quiet for ``idle_timeout`` seconds; neither affects other clients.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from wirelab.data._core import MAX_SUMMARY, Summary, Tally, format_error, format_summary
from wirelab.data._core import parse_summary as parse_reply
from wirelab.errors import LocalProtocolError, RemoteProtocolError
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_MESSAGE,
    DEFAULT_TIMEOUT,
    RECV_CHUNK,
)
from wirelab.net.server import ConnectionServer, last_word, peer_name
from wirelab.net.streams import map_os_error, recv_until_eof

__all__ = ["ZEN", "StreamReport", "open_stream_server", "send_stream"]

log = logging.getLogger(__name__)

#: What the book's client sends: three lines of the Zen of Python.
ZEN = (
    b"Beautiful is better than ugly.\n"
    b"Explicit is better than implicit.\n"
    b"Simple is better than complex.\n"
)


async def open_stream_server(
    host: str | None,
    port: int | str,
    *,
    max_size: int = DEFAULT_MAX_MESSAGE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> ConnectionServer:
    """Listen on ``host``:``port``; read each connection to end-of-file, then summarise it.

    Args:
        host: address to bind.
        port: port number or service name (0: any free port).
        max_size: bytes one message may have; more gets ``error: ...`` and a close.
        idle_timeout: seconds a client may send nothing before it is dropped.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_name(writer)
        tally = Tally()
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    data = await reader.read(RECV_CHUNK)
            except TimeoutError:
                log.warning(
                    "%s: nothing for %g s after %d bytes; closing", peer, idle_timeout, tally.size
                )
                return
            if not data:
                break
            if tally.size + len(data) > max_size:
                log.warning("%s: message over %d bytes; refused", peer, max_size)
                await last_word(
                    reader, writer, format_error(f"message over the limit of {max_size} bytes")
                )
                return
            tally.add(data, block=False)
        log.info("%s: end of file after %d bytes", peer, tally.size)
        writer.write(format_summary(tally.summary(blocks=False)))
        async with asyncio.timeout(idle_timeout):
            await writer.drain()

    return await ConnectionServer.open(handle, host, port, name="blocks stream")


@dataclass(frozen=True)
class StreamReport:
    """What the client sent and what the server says it received.

    Attributes:
        sent: bytes sent.
        expected: the summary of what we sent (bytes and digest).
        summary: the server's summary, or ``None`` when it closed without one (the book's
            server never answers).
        local: our socket name.
        server: the server's address.
    """

    sent: int
    expected: Summary
    summary: Summary | None
    local: str
    server: str

    @property
    def verified(self) -> bool:
        """True when the server's summary matches what we sent; False without a summary."""
        return self.summary is not None and self.summary == self.expected

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "sent": self.sent,
            "sent_sha256": self.expected.sha256,
            "server_received": None if self.summary is None else self.summary.to_json(),
            "verified": self.verified,
            "local": self.local,
            "server": self.server,
        }


def send_stream(
    host: str,
    port: int | str,
    message: bytes = ZEN,
    *,
    max_size: int = DEFAULT_MAX_MESSAGE,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> StreamReport:
    """Send ``message``, half-close, and check the server's summary of what it received.

    A server that closes without a summary (the book's) gives a report with ``summary=None``.

    Raises:
        LocalProtocolError: ``message`` is over ``max_size`` bytes.
        RemoteProtocolError: the server refused, or its summary does not match what we sent.
        Broken: the server closed or reset the connection before answering.
        Timeout: the server did not answer within ``timeout`` seconds.
        NameResolutionError, ConnectionRefused, ConnectError: no connection.
    """
    if len(message) > max_size:
        raise LocalProtocolError(f"{len(message)} bytes is over the limit of {max_size}")
    with connect_tcp(host, port, timeout=connect_timeout) as sock:
        sock.settimeout(timeout)
        local = format_address(sock.getsockname())
        server = format_address(sock.getpeername())
        try:
            sock.sendall(message)
            sock.shutdown(socket.SHUT_WR)  # end-of-file: the message is complete
        except OSError as exc:
            raise map_os_error(exc, f"sending to {server}") from exc
        reply = _read_to_eof(sock)
    tally = Tally()
    tally.add(message, block=False)
    expected = tally.summary(blocks=False)
    if not reply:  # end-of-file and nothing else: the book's server, which never answers
        return StreamReport(len(message), expected, None, local, server)
    summary = parse_reply(reply)
    if summary != expected:
        raise RemoteProtocolError(
            f"the server says it received {summary.size} bytes (sha256 {summary.sha256[:12]}...)"
            f"; we sent {len(message)}"
        )
    return StreamReport(len(message), expected, summary, local, server)


def _read_to_eof(sock: socket.socket) -> bytes:
    """The server's reply: everything until it closes, at most :data:`MAX_SUMMARY` bytes."""
    try:
        return recv_until_eof(sock, max_size=MAX_SUMMARY)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"the server's reply is over {MAX_SUMMARY} bytes") from exc
