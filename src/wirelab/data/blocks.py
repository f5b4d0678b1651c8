"""Chapter 5: length-prefixed blocks (application layer over TCP, RFC 9293) (F24).

Each block is a 4-byte big-endian unsigned length (``struct`` format ``!I``) followed by that
many bytes; an empty block (length 0) ends the stream. Unlike framing by end-of-file, one
connection can carry many messages, and the receiver always knows how much to read next.

The book's ``blocks.py`` wrote header and payload with plain ``send()`` (a partial write
corrupts the stream) and believed any announced length (a peer could claim 4 GiB and make it
allocate that much). Here the framing is :class:`~wirelab.net.framing.LengthPrefixFramer`:
writes go through ``sendall``, and a length over ``max_block`` is refused as soon as its
four bytes arrive, before anything is allocated for it.

Our server answers a finished stream with one block,
``received 3 blocks, 90 bytes, sha256 ...``, or ``error: ...`` when it refuses one.

The book's ``blocks.py`` answers nothing: its server half-closes at once and only reads, its
client shuts down its reading side. By default our client sends exactly the book's blocks
(:data:`BOOK_BLOCKS`, no newlines) and, meeting end-of-file with no summary, reports that
nothing was verified instead of failing; the book's client never sees our summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from wirelab.data._core import MAX_SUMMARY, Summary, Tally, format_error, format_summary
from wirelab.data._core import parse_summary as parse_reply
from wirelab.errors import Broken, LocalProtocolError, RemoteProtocolError
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.framing import LengthPrefixFramer
from wirelab.net.limits import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_MESSAGE,
    DEFAULT_TIMEOUT,
)
from wirelab.net.server import ConnectionServer, last_word, peer_name
from wirelab.net.streams import FramedSocket, read_message

__all__ = [
    "BOOK_BLOCKS",
    "DEFAULT_MAX_TOTAL",
    "BlocksReport",
    "open_blocks_server",
    "send_blocks",
]

log = logging.getLogger(__name__)

#: What the book's client sends: three lines of the Zen of Python, one block each, no newline.
BOOK_BLOCKS = (
    b"Beautiful is better than ugly.",
    b"Explicit is better than implicit.",
    b"Simple is better than complex.",
)

#: Payload bytes one connection may send in all before the server refuses it: 64 MiB.
DEFAULT_MAX_TOTAL = 64 << 20


async def open_blocks_server(
    host: str | None,
    port: int | str,
    *,
    max_block: int = DEFAULT_MAX_MESSAGE,
    max_total: int = DEFAULT_MAX_TOTAL,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> ConnectionServer:
    """Listen on ``host``:``port``; read blocks until an empty one, then answer a summary.

    Args:
        host: address to bind.
        port: port number or service name (0: any free port).
        max_block: largest block accepted; a larger announced length is refused at once.
        max_total: payload bytes one connection may send in all.
        idle_timeout: seconds a client may send nothing before it is dropped.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_name(writer)
        framer = LengthPrefixFramer(max_size=max_block)
        tally = Tally()
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    block = await read_message(reader, framer)
            except TimeoutError:
                log.warning("%s: nothing for %g s; closing", peer, idle_timeout)
                return
            except Broken as exc:  # closed or reset in the middle of a block
                log.warning("%s: %s (after %d blocks)", peer, exc, tally.blocks)
                return
            except RemoteProtocolError as exc:  # e.g. a 4 GiB length: refused unread
                log.warning("%s: %s; refused", peer, exc)
                await last_word(reader, writer, framer.frame(format_error(str(exc))))
                return
            if block is None:
                log.warning(
                    "%s: closed after %d blocks without the empty end block", peer, tally.blocks
                )
                return
            if not block:
                break  # the empty block: end of the stream
            if tally.size + len(block) > max_total:
                log.warning("%s: over %d bytes in all; refused", peer, max_total)
                reason = f"more than {max_total} bytes in one stream"
                await last_word(reader, writer, framer.frame(format_error(reason)))
                return
            tally.add(block)
        log.info("%s: %d blocks, %d bytes, then the end block", peer, tally.blocks, tally.size)
        writer.write(framer.frame(format_summary(tally.summary())))
        async with asyncio.timeout(idle_timeout):
            await writer.drain()

    return await ConnectionServer.open(handle, host, port, name="blocks")


@dataclass(frozen=True)
class BlocksReport:
    """What the client sent and what the server says it received.

    Attributes:
        count: blocks sent, not counting the empty end block.
        size: payload bytes sent.
        expected: the summary of what we sent.
        summary: the server's summary, or ``None`` when it closed without one (the book's
            server never answers).
        local: our socket name.
        server: the server's address.
    """

    count: int
    size: int
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
            "sent_blocks": self.count,
            "sent_bytes": self.size,
            "sent_sha256": self.expected.sha256,
            "server_received": None if self.summary is None else self.summary.to_json(),
            "verified": self.verified,
            "local": self.local,
            "server": self.server,
        }


def send_blocks(
    host: str,
    port: int | str,
    blocks: Sequence[bytes],
    *,
    max_block: int = DEFAULT_MAX_MESSAGE,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> BlocksReport:
    """Send each of ``blocks``, then an empty block, and check the server's summary.

    A server that closes without a summary (the book's) gives a report with ``summary=None``.

    Raises:
        LocalProtocolError: a block is empty (that would end the stream early) or over
            ``max_block`` bytes.
        RemoteProtocolError: the server refused, or its summary does not match.
        Broken: the server closed or reset the connection before answering.
        Timeout: the server did not answer within ``timeout`` seconds.
        NameResolutionError, ConnectionRefused, ConnectError: no connection.
    """
    for number, block in enumerate(blocks, 1):
        if not block:
            raise LocalProtocolError(f"block {number} is empty, which would end the stream")
        if len(block) > max_block:
            raise LocalProtocolError(f"block {number} is over the limit of {max_block} bytes")
    with connect_tcp(host, port, timeout=connect_timeout) as sock:
        sock.settimeout(timeout)
        local = format_address(sock.getsockname())
        server = format_address(sock.getpeername())
        framed = FramedSocket(sock, LengthPrefixFramer(max_size=max(max_block, MAX_SUMMARY)))
        for block in blocks:
            framed.send_message(block)
        framed.send_message(b"")  # the end of the stream
        reply = framed.recv_message()
    expected = Tally.of(blocks).summary()
    if reply is None:  # end-of-file between blocks: the book's server, which never answers
        return BlocksReport(len(blocks), expected.size, expected, None, local, server)
    summary = parse_reply(reply)
    if summary != expected:
        raise RemoteProtocolError(
            f"the server says it received {summary.blocks} blocks, {summary.size} bytes; "
            f"we sent {expected.blocks} blocks, {expected.size} bytes"
        )
    return BlocksReport(len(blocks), expected.size, expected, summary, local, server)
