"""The chapter 2 UDP server: answer every datagram, optionally dropping some on purpose.

One asyncio datagram endpoint serves every peer; a peer sending garbage gets its answer like
anyone else (any bytes are a valid request), and nobody can stall the others. With
``drop=0.5`` the server pretends to lose half the requests, as the book's ``udp_remote.py``
does, so clients must time out and retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import cast

from wirelab.errors import ConfigError
from wirelab.net.addresses import bind_udp, format_address
from wirelab.udp._core import reply_for

__all__ = ["UDPServerProtocol", "UDPStats", "open_udp_server"]

log = logging.getLogger(__name__)


@dataclass
class UDPStats:
    """What a server has seen."""

    received: int = 0
    answered: int = 0
    dropped: int = 0


@dataclass
class UDPServerProtocol(asyncio.DatagramProtocol):
    """Answers each datagram with ``Your data was N bytes long`` (unless it drops it)."""

    drop: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    stats: UDPStats = field(default_factory=UDPStats)
    transport: asyncio.DatagramTransport | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop < 1.0:
            raise ConfigError(f"drop must be a share in [0, 1), not {self.drop}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: CPython 3.11's selector datagram transport does not
        # subclass asyncio.DatagramTransport, though it implements it.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.stats.received += 1
        peer = format_address(addr)
        if self.drop and self.rng.random() < self.drop:
            self.stats.dropped += 1
            log.info("pretending to drop a datagram from %s", peer)
            return
        log.info("%s sent %d bytes", peer, len(data))
        assert self.transport is not None
        self.transport.sendto(reply_for(data), addr)
        self.stats.answered += 1

    def error_received(self, exc: Exception) -> None:
        # ICMP errors about an earlier reply (the client went away); keep serving.
        log.debug("ignoring ICMP error: %s", exc)


async def open_udp_server(
    host: str | None, port: int | str, *, drop: float = 0.0, rng: random.Random | None = None
) -> tuple[asyncio.DatagramTransport, UDPServerProtocol]:
    """Bind a UDP server on ``host``:``port`` and return its transport and protocol."""
    sock = bind_udp(host, port)
    loop = asyncio.get_running_loop()
    proto = UDPServerProtocol(drop=drop, rng=rng or random.Random())
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport, proto
