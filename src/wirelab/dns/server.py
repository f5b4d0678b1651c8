"""DNS over UDP and TCP (RFC 1035 section 4.2, RFC 7766): asyncio adapters around the core.

UDP: one datagram in, at most one out; the core decides truncation. TCP: every message has a
two-byte length prefix; several queries may be pipelined on one connection and are answered
in order. TCP sits on the project's one connection server (:mod:`wirelab.net.server`), with
these limits (:class:`ServerLimits`):

* the size of one query (:data:`MAX_TCP_QUERY`); a bigger announced length closes the
  connection;
* the connections open at once (:data:`MAX_TCP_CONNECTIONS`). When they are all taken, the
  connection quiet for longest is closed and the new client is served (RFC 7766 section
  6.2.3: "the server MAY close ... the least recently used connection"), so clients that
  send a query every few seconds cannot hold every slot and turn fresh clients away;
* the idle time (:data:`TCP_IDLE_TIMEOUT`; RFC 7766 section 6.2.3 recommends seconds, not
  minutes), also the time one query may take to arrive whole;
* the queries one connection may send (:data:`MAX_TCP_QUERIES`) and its lifetime
  (:data:`MAX_TCP_LIFETIME`): after either, the connection is closed once its answers are
  sent, and the client opens another (RFC 7766 section 6.2.1 lets either side close).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass

from wirelab.dns._core import Responder
from wirelab.dns.zone import Zone
from wirelab.errors import ConfigError, ConnectError
from wirelab.net.addresses import listen_tcp
from wirelab.net.server import ConnectionServer, peer_name

__all__ = [
    "MAX_TCP_CONNECTIONS",
    "MAX_TCP_LIFETIME",
    "MAX_TCP_QUERIES",
    "MAX_TCP_QUERY",
    "TCP_IDLE_TIMEOUT",
    "DNSServer",
    "ServerLimits",
    "open_dns_server",
]

log = logging.getLogger(__name__)

#: Largest query accepted over TCP. Real queries are well under 512 bytes; EDNS options
#: (cookies, padding) add tens of bytes. A bigger announced length closes the connection.
MAX_TCP_QUERY = 4096

#: TCP connections served at once; one more closes the connection quiet for longest.
MAX_TCP_CONNECTIONS = 64

#: Seconds a TCP connection may stay silent between queries (or take to send one query).
TCP_IDLE_TIMEOUT = 10.0

#: Queries answered on one TCP connection before we close it (PowerDNS and dnsdist have the
#: same knob); a resolver reconnects in one round trip.
MAX_TCP_QUERIES = 100

#: Seconds one TCP connection may last, however busy, before we close it.
MAX_TCP_LIFETIME = 60.0


@dataclass(frozen=True)
class ServerLimits:
    """The TCP limits of one server (defaults named above)."""

    max_tcp_query: int = MAX_TCP_QUERY
    max_tcp_connections: int = MAX_TCP_CONNECTIONS
    idle_timeout: float = TCP_IDLE_TIMEOUT
    max_queries: int = MAX_TCP_QUERIES
    max_lifetime: float = MAX_TCP_LIFETIME

    def __post_init__(self) -> None:
        counts = (self.max_tcp_query, self.max_tcp_connections, self.max_queries)
        if min(counts) < 1:
            raise ConfigError(f"DNS server limits must be at least 1: {self}")
        if not (0 < self.idle_timeout < float("inf") and 0 < self.max_lifetime < float("inf")):
            raise ConfigError(f"DNS server timeouts must be finite and above zero: {self}")


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = self.responder.respond(data, "udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from earlier replies
        log.debug("UDP error: %s", exc)


@dataclass
class DNSServer:
    """A running DNS server: its UDP transport and its TCP connection server."""

    responder: Responder
    udp: asyncio.DatagramTransport
    tcp: ConnectionServer
    limits: ServerLimits

    @property
    def udp_socket(self) -> socket.socket:
        """The bound UDP socket (for reporting its address)."""
        sock = self.udp.get_extra_info("socket")
        assert sock is not None
        return sock  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self.udp.close()
        await self.tcp.aclose()


async def _serve_tcp(
    responder: Responder,
    limits: ServerLimits,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer length-prefixed queries on one connection, in order, within its limits."""
    loop = asyncio.get_running_loop()
    peer = peer_name(writer)
    end_of_life = loop.time() + limits.max_lifetime
    for _ in range(limits.max_queries):
        wait = min(limits.idle_timeout, end_of_life - loop.time())
        if wait <= 0:
            log.info("closing TCP connection from %s: %g s old", peer, limits.max_lifetime)
            return
        try:
            async with asyncio.timeout(wait):
                prefix = await reader.readexactly(2)
                size = int.from_bytes(prefix, "big")
                if size == 0 or size > limits.max_tcp_query:
                    log.info("closing TCP connection from %s: query of %d bytes", peer, size)
                    return
                data = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                log.info("closing TCP connection from %s: query cut short", peer)
            return  # the client is done
        except TimeoutError:
            return  # idle too long, or a query too slow to arrive, or too old
        reply = responder.respond(data, "tcp")
        if reply is None:
            continue
        writer.write(len(reply).to_bytes(2, "big") + reply)
        try:
            async with asyncio.timeout(limits.idle_timeout):
                await writer.drain()
        except TimeoutError:
            log.info("closing TCP connection from %s: it does not read its answers", peer)
            return
    log.info("closing TCP connection from %s: %d queries answered", peer, limits.max_queries)


async def open_dns_server(
    zone: Zone,
    host: str,
    udp_port: int,
    tcp_port: int | None = None,
    *,
    limits: ServerLimits | None = None,
) -> DNSServer:
    """Bind UDP ``host:udp_port`` and TCP ``host:tcp_port`` and start answering for ``zone``.

    With ``udp_port`` 0, TCP binds the port UDP got when ``tcp_port`` is None or 0, so one
    number serves both, as resolvers expect (retrying on TCP at the same port).

    Raises:
        ConnectError: a port could not be bound.
    """
    loop = asyncio.get_running_loop()
    responder = Responder(zone)
    limits = limits or ServerLimits()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_tcp(responder, limits, reader, writer)

    attempts = 5 if udp_port == 0 and not tcp_port else 1
    for attempt in range(attempts):
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(responder), local_addr=(host, udp_port)
            )
        except OSError as exc:
            raise ConnectError(f"cannot bind UDP {host}:{udp_port}: {exc.strerror or exc}") from exc
        port = transport.get_extra_info("sockname")[1]
        tcp = ConnectionServer(
            handle,
            name="dns",
            max_connections=limits.max_tcp_connections,
            idle_timeout=limits.idle_timeout,
            evict_idlest=True,
        )
        try:
            await tcp.start(listen_tcp(host, tcp_port or port))
        except ConnectError as exc:
            transport.close()
            cause = exc.__cause__
            in_use = isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE
            if not in_use or attempt + 1 == attempts:
                raise
            continue  # TCP already had the port UDP picked: try another pair
        except BaseException:
            transport.close()
            raise
        break
    return DNSServer(responder, transport, tcp, limits)
