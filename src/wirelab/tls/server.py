"""The TLS greeting server (RFC 8446 / RFC 5246 over TCP), chapter 6's ``safe_tls.py`` server.

The book's server accepted *one* connection, sent ``Simple is better than complex.`` (30
bytes, no newline) and closed the socket without a TLS close_notify; a client that never
finished its handshake hung it for good. This one sends the book's client exactly those 30
bytes, then a close_notify (which the book's client, reading until the end, cannot tell from
the book's bare close), and serves many clients at once. It sits on the project's one
connection server (:class:`wirelab.net.server.ConnectionServer`), and every connection is
bounded:

* at most ``max_connections`` connections are served at once; more are closed at once, with
  one rate-limited log line per burst (the connection server's cap);
* the TLS handshake must finish within ``handshake_timeout`` (a client that connects and
  says nothing, or speaks slowly, is dropped and logged);
* writing the greeting and closing must finish within ``write_timeout``;
* a connection that moves no byte for the connection server's idle timeout is closed too.

A client that fails its handshake (plaintext on a TLS port, an unknown CA, no client
certificate where one is required ...) costs one log line naming the peer and the reason;
everyone else keeps being served. With a context that requires client certificates, the
greeting names the client's certificate subject (F28).

The handshake runs in the connection handler over memory BIOs (``SSLContext.wrap_bio``)
rather than in asyncio's TLS transport, so that its failures reach our handler and its log
line, and the TLS alert that says why still reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass, field

from wirelab.errors import ConfigError
from wirelab.net.addresses import format_address, listen_tcp
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, RECV_CHUNK
from wirelab.net.server import ConnectionServer
from wirelab.net.tlsctx import describe_tls_error
from wirelab.tls.certinfo import common_name

__all__ = [
    "GREETING",
    "GreetingServer",
    "ServerStats",
    "open_greeting_server",
    "start_greeting_server",
]

log = logging.getLogger(__name__)

#: What the server says: the book's server's exact bytes (a line of the Zen of Python, with
#: no newline after it).
GREETING = b"Simple is better than complex."

#: Connections served at once by default.
DEFAULT_MAX_TLS_CONNECTIONS = 1000


@dataclass
class ServerStats:
    """Counters a test or the tour can read."""

    greeted: int = 0
    failed_handshakes: int = 0
    refused_over_limit: int = 0
    active: int = 0
    last_failure: str = ""
    failures: list[str] = field(default_factory=list)


class GreetingServer:
    """Serves one TLS context: handshake, greeting, close.

    Args:
        context: a server context (:func:`wirelab.net.tlsctx.server_context`).
        message: the greeting.
        greet_client: put the client certificate's subject in the greeting (client auth).
        handshake_timeout: seconds a client has to finish the handshake.
        write_timeout: seconds to send the greeting and close.
        max_connections: connections served at once.
        name: a label for log lines (the endpoint's name).

    Raises:
        ConfigError: a timeout that is not above zero, or a connection cap below 1.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        message: bytes = GREETING,
        greet_client: bool = False,
        handshake_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        write_timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_TLS_CONNECTIONS,
        name: str = "tls",
    ) -> None:
        for label, seconds in (("handshake", handshake_timeout), ("write", write_timeout)):
            if not seconds > 0:  # also refuses NaN
                raise ConfigError(f"{name}: the {label} timeout must be above zero, not {seconds}")
        if max_connections < 1:
            raise ConfigError(f"{name}: max_connections must be at least 1, not {max_connections}")
        if not isinstance(message, bytes):
            raise ConfigError(f"{name}: the greeting must be bytes, not {type(message).__name__}")
        self.context = context
        self.message = message
        self.greet_client = greet_client
        self.handshake_timeout = handshake_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self.name = name
        self.stats = ServerStats()

    def _failed(self, peer: str, reason: str) -> None:
        self.stats.failed_handshakes += 1
        self.stats.last_failure = reason
        if len(self.stats.failures) < 100:
            self.stats.failures.append(reason)
        log.info("%s: TLS handshake with %s failed: %s", self.name, peer, reason)

    async def refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection over the cap: counted and dropped (the connection server logs it)."""
        self.stats.refused_over_limit += 1
        writer.transport.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection (the connection server's handler)."""
        peername = writer.get_extra_info("peername")
        peer = format_address(peername) if peername else "?"
        self.stats.active += 1
        try:
            await self._serve(reader, writer, peer)
        except Exception as exc:  # a bug must cost one connection and one line, not the server
            log.warning("%s: dropped %s after an unexpected error: %r", self.name, peer, exc)
            writer.transport.abort()
        finally:
            self.stats.active -= 1

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        tls = _MemoryTLS(self.context, reader, writer)
        try:
            async with asyncio.timeout(self.handshake_timeout):
                await tls.handshake()
        except TimeoutError:
            self._failed(peer, f"no handshake within {self.handshake_timeout:g} s")
            writer.transport.abort()
            return
        except ssl.SSLError as exc:
            self._failed(peer, describe_tls_error(exc))
            await tls.flush_quietly(self.write_timeout)  # the alert tells the client why
            writer.transport.abort()
            return
        except (ConnectionError, OSError, EOFError):
            self._failed(peer, "the client closed the connection mid-handshake")
            writer.transport.abort()
            return
        message = self.message
        if self.greet_client:
            message = f"Hello, {_subject(tls.ssl_object)}. ".encode() + message
        try:
            async with asyncio.timeout(self.write_timeout):
                await tls.send(message)
                await tls.close()
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
            log.info("%s: could not finish greeting %s: %r", self.name, peer, exc)
            writer.transport.abort()
            return
        self.stats.greeted += 1
        log.debug("%s: greeted %s", self.name, peer)


class _MemoryTLS:
    """TLS over an asyncio stream with memory BIOs, so alerts reach the peer on failure.

    asyncio's own TLS transport drops the alert OpenSSL writes when a handshake fails (the
    client then sees a bare EOF instead of "certificate required" or "unknown CA").
    """

    def __init__(
        self, context: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._reader = reader
        self._writer = writer

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def flush_quietly(self, timeout: float) -> None:
        """Send what OpenSSL queued (an alert), ignoring a peer that is already gone."""
        try:
            async with asyncio.timeout(timeout):
                await self._flush()
        except (TimeoutError, ConnectionError, OSError):
            pass

    async def _pump(self) -> None:
        await self._flush()
        data = await self._reader.read(RECV_CHUNK)
        if not data:
            raise EOFError("the peer closed the connection")
        self._incoming.write(data)

    async def handshake(self) -> None:
        """Run the server side of the handshake."""
        while True:
            try:
                self.ssl_object.do_handshake()
            except ssl.SSLWantReadError:
                await self._pump()
                continue
            await self._flush()
            return

    async def send(self, data: bytes) -> None:
        """Encrypt and send ``data``."""
        self.ssl_object.write(data)
        await self._flush()

    async def close(self) -> None:
        """Send close_notify (RFC 8446 §6.1) and close; the peer's reply is not awaited."""
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            self.ssl_object.unwrap()
        await self._flush()
        self._writer.close()
        await self._writer.wait_closed()


def _subject(ssl_object: ssl.SSLObject) -> str:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return "anonymous client"
    return common_name(der) or "client"


async def start_greeting_server(sock: socket.socket, server: GreetingServer) -> ConnectionServer:
    """Serve ``server`` on the bound, listening ``sock`` (bind first, report, then serve).

    The connection server owns ``sock`` afterwards; ``await result.aclose()`` stops it and
    every connection.
    """
    connections = ConnectionServer(
        server.handle,
        name=server.name,
        max_connections=server.max_connections,
        on_overload=server.refuse,
    )
    await connections.start(sock)
    return connections


async def open_greeting_server(host: str, port: int, server: GreetingServer) -> ConnectionServer:
    """Bind ``host``:``port`` and serve ``server`` there.

    Raises:
        ConnectError: the address cannot be bound.
    """
    return await start_greeting_server(listen_tcp(host, port), server)
