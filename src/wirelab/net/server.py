"""Transport layer (TCP, RFC 9293): the one asyncio server that owns its connections.

``asyncio.start_server`` forgets the tasks it starts for each connection, and on Python 3.11
``Server.close()`` leaves them running. :class:`ConnectionServer` keeps them: closing the
server cancels every handler, and each handler closes its own socket in ``finally``, so a
stopped server leaves no socket behind. One handler that fails is logged in one line and
never touches the others.

Every connection is bounded three ways, whatever its handler does:

* **a cap**: at most ``max_connections`` are served at once. One more is accepted and closed
  at once (or handed to ``on_overload`` for a protocol's own refusal, bounded in time), and
  the server goes on serving the others. With ``evict_idlest``, the connection that has been
  quiet longest is closed instead and the new one is served (RFC 7766 section 6.2.3 lets a
  DNS server do this), so connections that trickle cannot hold every slot. Overload costs
  one warning line per burst (:class:`OverloadLog`), not one per refused connection, so a
  flood cannot fill the log;
* **an idle timeout**: a connection that neither sends a byte nor takes one of ours for
  ``idle_timeout`` seconds is closed (one info line);
* **a closing grace**: a closing connection gets ``CLOSE_GRACE`` seconds to flush.

Every TCP server of the project sits on it, or says in its docstring why not (the Zen
architectures, which are the lesson of chapter 7, each own their accept loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from wirelab.errors import ConfigError
from wirelab.net.addresses import format_address, listen_tcp
from wirelab.net.limits import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS

__all__ = [
    "CLOSE_GRACE",
    "OVERLOAD_LOG_PERIOD",
    "ConnectionServer",
    "Handler",
    "OverloadLog",
    "ServerThread",
    "close_listener",
    "close_writer",
    "last_word",
    "listener_socket",
    "peer_name",
]

log = logging.getLogger(__name__)

#: What serves one connection.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Seconds a closing connection gets to flush before we stop waiting for it.
CLOSE_GRACE = 1.0

#: Seconds between two overload lines of one server: one line per burst of refusals.
OVERLOAD_LOG_PERIOD = 10.0

#: Seconds an ``on_overload`` refusal may take before the connection is dropped.
_REFUSAL_TIMEOUT = 2.0

#: Refusals under way at once; past this an over-cap connection is closed without one.
_MAX_REFUSALS = 64


def peer_name(writer: asyncio.StreamWriter) -> str:
    """``host:port`` of the peer of a connection (``?`` if the socket is already gone)."""
    peer = writer.get_extra_info("peername")
    return format_address(peer) if peer else "?"


async def last_word(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    reply: bytes,
    *,
    max_discard: int = 1 << 20,
    seconds: float = 2.0,
) -> None:
    """Send a last ``reply``, half-close, and discard what the peer still sends, briefly.

    Closing a socket with unread bytes in its receive buffer makes the kernel send a reset,
    and a reset can destroy our reply before the peer reads it. So we send the reply and
    end-of-file, then read and drop up to ``max_discard`` bytes for up to ``seconds`` (until
    the peer closes, usually at once), giving it time to read our answer, or why we refused.
    """
    writer.write(reply)
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(seconds):
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            dropped = 0
            while dropped <= max_discard:
                data = await reader.read(64 << 10)
                if not data:
                    break
                dropped += len(data)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a connection and wait briefly for the close, ignoring a peer that reset it."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
        async with asyncio.timeout(CLOSE_GRACE):
            await writer.wait_closed()


class OverloadLog:
    """One warning line per burst of a repeated condition, with the count it stands for.

    The first event logs at once; events within ``period`` seconds of that line are only
    counted, and the next line (at the first event after the period) says how many there were.
    """

    def __init__(self, period: float = OVERLOAD_LOG_PERIOD) -> None:
        self.period = period
        self.lines = 0
        self._last: float | None = None
        self._unlogged = 0
        self._lock = threading.Lock()

    def event(self) -> int | None:
        """Count one event; return how many events the line to log now stands for, or None."""
        now = time.monotonic()
        with self._lock:
            self._unlogged += 1
            if self._last is not None and now - self._last < self.period:
                return None
            self._last = now
            count, self._unlogged = self._unlogged, 0
            self.lines += 1
            return count


class _Protocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, noting when the connection last read or wrote a byte.

    Writes are noted on the transport itself (its ``write`` and ``writelines``), because a
    peer that reads fast keeps our write buffer empty: a server that only sends (a download)
    is busy, not idle, though its buffer never seems to change.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        callback: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(reader, callback, loop=loop)
        self._clock = loop.time
        self.last_io = loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            write, writelines = transport.write, transport.writelines

            def noted_write(data: bytes | bytearray | memoryview) -> None:
                self.last_io = self._clock()
                write(data)

            def noted_writelines(lines: Iterable[bytes | bytearray | memoryview]) -> None:
                self.last_io = self._clock()
                writelines(lines)

            transport.write = noted_write  # type: ignore[method-assign]
            transport.writelines = noted_writelines  # type: ignore[method-assign,assignment]
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.last_io = self._clock()
        super().data_received(data)


class _Connection:
    """What the idle watch needs to know of one connection."""

    __slots__ = ("evicted", "idle", "last_buffered", "last_moved", "protocol", "task", "writer")

    def __init__(self, task: asyncio.Task[None], writer: asyncio.StreamWriter, now: float) -> None:
        self.task = task
        self.writer = writer
        self.protocol = writer.transport.get_protocol()
        self.last_buffered = writer.transport.get_write_buffer_size()
        self.last_moved = now
        self.idle = False
        self.evicted = False

    def quiet_since(self, now: float) -> float:
        """When the connection last moved a byte either way (as far as we can see)."""
        buffered = self.writer.transport.get_write_buffer_size()
        if buffered != self.last_buffered:  # the peer took some of ours, or we wrote more
            self.last_buffered = buffered
            self.last_moved = now
        if isinstance(self.protocol, _Protocol):
            self.last_moved = max(self.last_moved, self.protocol.last_io)
        return self.last_moved


class ConnectionServer:
    """A listening TCP socket served by one coroutine per connection, with a cap and a timeout.

    Args:
        handler: serves one connection; it need not close the writer (we do).
        name: a short name for log lines.
        sock_options: extra ``(level, option, value)`` set on the listening socket before
            it serves; accepted sockets inherit them (buffer sizes, for instance).
        max_connections: connections served at once; one more is refused.
        idle_timeout: seconds a connection may move no byte before it is closed; ``None``
            leaves it to the handler (a protocol whose peers wait on purpose).
        on_overload: the protocol's refusal for a connection over the cap (a ``421``, a
            ``SERVFAIL`` ...), given at most 2 s; by default it is closed at once.
        ssl_context: serve TLS with this server context (handshake bounded by
            ``handshake_timeout``).
        handshake_timeout: seconds a TLS handshake may take.
        overload_log_period: seconds between two overload lines.
        evict_idlest: when full, close the connection quiet for longest and serve the new
            one, instead of refusing the new one.

    Raises:
        ConfigError: a limit below 1 (or a timeout that is not above zero).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        name: str,
        sock_options: tuple[tuple[int, int, int], ...] = (),
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        on_overload: Handler | None = None,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 5.0,
        overload_log_period: float = OVERLOAD_LOG_PERIOD,
        evict_idlest: bool = False,
    ) -> None:
        if max_connections < 1:
            raise ConfigError(f"{name}: max_connections must be at least 1, not {max_connections}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ConfigError(f"{name}: the idle timeout must be above zero, not {idle_timeout}")
        self.handler = handler
        self.name = name
        self.sock_options = sock_options
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.on_overload = on_overload
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.evict_idlest = evict_idlest
        #: Connections served since the start (refused ones not counted).
        self.connections = 0
        #: Connections refused for the cap since the start.
        self.refused = 0
        #: Connections closed by the idle timeout since the start.
        self.idle_closed = 0
        #: Connections closed to make room for a new one (``evict_idlest``) since the start.
        self.evicted = 0
        self.overload_log = OverloadLog(overload_log_period)
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], _Connection] = {}
        self._refusals: set[asyncio.Task[None]] = set()
        self._evicting: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        handler: Handler,
        host: str | None,
        port: int | str,
        *,
        name: str,
        **options: Any,
    ) -> ConnectionServer:
        """Bind ``host``:``port`` (``SO_REUSEADDR`` set) and start serving.

        ``options`` are the keyword arguments of the constructor.

        Raises:
            ConnectError: the address cannot be bound (in use, not ours ...).
        """
        server = cls(handler, name=name, **options)
        await server.start(listen_tcp(host, port))
        return server

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already listening socket (which this server now owns)."""
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(asyncio.StreamReader(loop=loop), self._accept, loop)

        try:
            for level, option, value in self.sock_options:
                sock.setsockopt(level, option, value)
            if self.ssl_context is not None:
                self._server = await loop.create_server(
                    factory,
                    sock=sock,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=self.handshake_timeout,
                )
            else:
                self._server = await loop.create_server(factory, sock=sock)
        except BaseException:
            sock.close()
            raise
        if self.idle_timeout is not None:
            self._watch = loop.create_task(self._watch_idle(), name=f"{self.name}: idle watch")

    @property
    def socket(self) -> socket.socket:
        """The listening socket (for ``getsockname`` and the lab's endpoint report)."""
        assert self._server is not None, "the server has not started"
        return self._server.sockets[0]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def active(self) -> int:
        """Connections being served right now."""
        return len(self._conns)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._conns) >= self.max_connections and not (self.evict_idlest and self._evict()):
            await self._refuse(task, reader, writer)
            return
        conn = _Connection(task, writer, asyncio.get_running_loop().time())
        self._conns[task] = conn
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except asyncio.CancelledError:
            # The server is closing, or the connection went idle. This task is the
            # connection's top level and nobody awaits its result; ending it normally keeps
            # Python 3.11's stream callback from logging a spurious traceback.
            if conn.evicted:
                log.debug("%s: %s closed to make room", self.name, peer_name(writer))
            elif conn.idle:
                log.info(
                    "%s: %s moved no byte for %g s; closed",
                    self.name,
                    peer_name(writer),
                    self.idle_timeout,
                )
            else:
                log.debug("%s: connection from %s cancelled", self.name, peer_name(writer))
        except (OSError, ssl.SSLError) as exc:
            log.warning("%s: connection from %s broke: %s", self.name, peer_name(writer), exc)
        except Exception:
            log.exception("%s: handler failed for %s", self.name, peer_name(writer))
        finally:
            self._conns.pop(task, None)
            await close_writer(writer)

    def _evict(self) -> bool:
        """Close the connection quiet for longest, to make room for a new one."""
        now = asyncio.get_running_loop().time()
        victim = min(self._conns.values(), key=lambda conn: conn.quiet_since(now), default=None)
        if victim is None:
            return False
        victim.evicted = True
        self.evicted += 1
        del self._conns[victim.task]
        self._evicting.add(victim.task)
        victim.task.add_done_callback(self._evicting.discard)
        victim.task.cancel()
        count = self.overload_log.event()
        if count is not None:
            log.warning(
                "%s: %d connections open, the cap; closing the idlest (quiet %.1f s) for each "
                "new one (%d closed since the last such line)",
                self.name,
                len(self._conns) + 1,
                now - victim.last_moved,
                count,
            )
        return True

    async def _refuse(
        self, task: asyncio.Task[None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Turn away one connection over the cap: the protocol's refusal, or a plain close."""
        self.refused += 1
        count = self.overload_log.event()
        if count is not None:
            log.warning(
                "%s: %d connections open, the cap; refusing new ones "
                "(%d refused since the last such line)",
                self.name,
                len(self._conns),
                count,
            )
        try:
            if self.on_overload is not None and len(self._refusals) < _MAX_REFUSALS:
                self._refusals.add(task)
                async with asyncio.timeout(_REFUSAL_TIMEOUT):
                    await self.on_overload(reader, writer)
        except (asyncio.CancelledError, TimeoutError, OSError, ssl.SSLError):
            pass
        except Exception:
            log.exception("%s: the overload refusal failed for %s", self.name, peer_name(writer))
        finally:
            self._refusals.discard(task)
            if self.on_overload is None:
                writer.transport.abort()  # no FIN dance: an over-cap peer costs nothing
            await close_writer(writer)

    async def _watch_idle(self) -> None:
        """Cancel the handler of every connection quiet for longer than ``idle_timeout``."""
        assert self.idle_timeout is not None
        timeout = self.idle_timeout
        interval = min(max(timeout / 4, 0.02), 1.0)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self._conns.values()):
                if not conn.idle and now - conn.quiet_since(now) > timeout:
                    conn.idle = True
                    self.idle_closed += 1
                    conn.task.cancel()

    async def aclose(self) -> None:
        """Stop listening, cancel every connection, and wait for them to finish."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._server is not None:
            self._server.close()
        tasks = [*self._conns, *self._refusals, *self._evicting]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled, then close everything."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()


def listener_socket(listener: Any) -> socket.socket:
    """The bound socket of what a server opener returned.

    Understands a :class:`ConnectionServer` (or anything with a ``socket`` attribute), an
    ``asyncio.Server``, an asyncio transport, a ``(transport, protocol)`` pair and a socket.
    """
    if isinstance(listener, socket.socket):
        return listener
    if isinstance(listener, tuple):
        return listener_socket(listener[0])
    if isinstance(listener, asyncio.Server):
        return listener.sockets[0]
    if hasattr(listener, "get_extra_info"):  # an asyncio transport
        found: socket.socket = listener.get_extra_info("socket")
        return found
    sock: socket.socket | None = getattr(listener, "socket", None)
    if sock is not None:
        return sock
    raise TypeError(f"no listening socket in {listener!r}")


async def close_listener(listener: Any) -> None:
    """Close what a server opener returned (see :func:`listener_socket`) and wait for it."""
    if isinstance(listener, tuple):
        await close_listener(listener[0])
        return
    aclose = getattr(listener, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    result = listener.close()
    if inspect.isawaitable(result):
        await result
    wait_closed = getattr(listener, "wait_closed", None)
    if wait_closed is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await wait_closed()


class ServerThread:
    """Run a :class:`ConnectionServer` on a private event loop in a background thread.

    For blocking programs and tests that want one of our servers next to them::

        with ServerThread(lambda: open_sixteen_server("127.0.0.1", 0)) as server:
            exchange(*server.address)

    Args:
        factory: a coroutine function that opens the server (inside the thread's loop).
        start_timeout: seconds the server has to bind.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[ConnectionServer]],
        *,
        start_timeout: float = 10.0,
    ) -> None:
        self.factory = factory
        self.start_timeout = start_timeout
        self._ready = threading.Event()
        self._server: ConnectionServer | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="wirelab-server", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._server = await self.factory()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self._server.aclose()

        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
        finally:
            self._ready.set()

    def start(self) -> ConnectionServer:
        """Start the thread and return the server once it listens.

        Raises:
            Exception: whatever stopped the server from starting (a bind error ...).
        """
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise TimeoutError(f"the server did not start within {self.start_timeout:g} s")
        if self._server is None:
            self._thread.join(self.start_timeout)
            assert self._error is not None
            raise self._error
        return self._server

    def stop(self, timeout: float = 10.0) -> None:
        """Close the server and its connections, and wait for the thread to end."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> ConnectionServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
