"""DNS over UDP and TCP (RFC 1035 section 4.2, RFC 7766): asyncio adapters around the core.

UDP: one datagram in, at most one out; the core decides truncation. TCP: every message has a
two-byte length prefix; several queries may be pipelined on one connection and are answered
in order. Limits on TCP: the size of one query (:data:`MAX_TCP_QUERY`), the number of open
connections (:data:`MAX_TCP_CONNECTIONS`, extra ones are closed at once), and the idle time
(:data:`TCP_IDLE_TIMEOUT`, RFC 7766 section 6.2.3 recommends seconds, not minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass, field

from wirelab.dns._core import Responder
from wirelab.dns.zone import Zone
from wirelab.net.addresses import format_address

__all__ = [
    "MAX_TCP_CONNECTIONS",
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

#: TCP connections served at once; one more is closed as soon as it is accepted.
MAX_TCP_CONNECTIONS = 64

#: Seconds a TCP connection may stay silent between queries before we close it.
TCP_IDLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerLimits:
    """The TCP limits of one server (defaults named above)."""

    max_tcp_query: int = MAX_TCP_QUERY
    max_tcp_connections: int = MAX_TCP_CONNECTIONS
    idle_timeout: float = TCP_IDLE_TIMEOUT


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
    """A running DNS server: its UDP transport, its TCP server, and its live connections."""

    responder: Responder
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server
    limits: ServerLimits
    connections: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def udp_socket(self) -> socket.socket:
        """The bound UDP socket (for reporting its address)."""
        sock = self.udp.get_extra_info("socket")
        assert sock is not None
        return sock  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self.udp.close()
        self.tcp.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.tcp.wait_closed(), 5.0)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = format_address(writer.get_extra_info("peername") or ("?", 0))
        if len(self.connections) >= self.limits.max_tcp_connections:
            log.warning(
                "closing TCP connection from %s: %d already open", peer, len(self.connections)
            )
            writer.close()
            return
        self.connections.add(task)
        try:
            while True:
                try:
                    prefix = await asyncio.wait_for(reader.readexactly(2), self.limits.idle_timeout)
                except (asyncio.IncompleteReadError, TimeoutError):
                    return  # the client is done, or idle too long
                size = int.from_bytes(prefix, "big")
                if size == 0 or size > self.limits.max_tcp_query:
                    log.info("closing TCP connection from %s: query of %d bytes", peer, size)
                    return
                try:
                    data = await asyncio.wait_for(
                        reader.readexactly(size), self.limits.idle_timeout
                    )
                except (asyncio.IncompleteReadError, TimeoutError):
                    log.info("closing TCP connection from %s: query cut short", peer)
                    return
                reply = self.responder.respond(data, "tcp")
                if reply is None:
                    continue
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await asyncio.wait_for(writer.drain(), self.limits.idle_timeout)
        except (ConnectionError, TimeoutError) as exc:
            log.info("TCP connection from %s broke: %s", peer, exc)
        finally:
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


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
        OSError: a port could not be bound.
    """
    loop = asyncio.get_running_loop()
    responder = Responder(zone)
    holder: list[DNSServer] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await holder[0]._serve_tcp(reader, writer)

    attempts = 5 if udp_port == 0 and not tcp_port else 1
    for attempt in range(attempts):
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(responder), local_addr=(host, udp_port)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(
                handle, host, tcp_port or port, reuse_address=True, limit=2 + MAX_TCP_QUERY
            )
        except OSError as exc:
            transport.close()
            if exc.errno != errno.EADDRINUSE or attempt + 1 == attempts:
                raise
            continue  # TCP already had the port UDP picked: try another pair
        except BaseException:
            transport.close()
            raise
        break
    server = DNSServer(responder, transport, tcp, limits or ServerLimits())
    holder.append(server)
    return server
