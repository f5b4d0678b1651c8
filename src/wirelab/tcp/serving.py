"""Transport layer (TCP, RFC 9293): an asyncio server that owns its connections.

``asyncio.start_server`` forgets the tasks it starts for each connection, and on Python 3.11
``Server.close()`` leaves them running. :class:`ConnectionServer` keeps them: closing the
server cancels every handler, and each handler closes its own socket in ``finally``, so a
stopped server leaves no socket behind. One handler that fails is logged in one line and
never touches the others. Chapters 3 and 5 build their servers on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable, Callable

from wirelab.net.addresses import format_address, listen_tcp

__all__ = ["ConnectionServer", "Handler", "ServerThread", "close_writer", "last_word", "peer_name"]

log = logging.getLogger(__name__)

#: What serves one connection.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Seconds a closing connection gets to flush before we stop waiting for it.
_CLOSE_GRACE = 1.0


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
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
        async with asyncio.timeout(_CLOSE_GRACE):
            await writer.wait_closed()


class ConnectionServer:
    """A listening TCP socket served by one coroutine per connection.

    Args:
        handler: serves one connection; it need not close the writer (we do).
        name: a short name for log lines.
        sock_options: extra ``(level, option, value)`` set on the listening socket before
            it serves; accepted sockets inherit them (buffer sizes, for instance).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        name: str,
        sock_options: tuple[tuple[int, int, int], ...] = (),
    ) -> None:
        self.handler = handler
        self.name = name
        self.sock_options = sock_options
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        handler: Handler,
        host: str | None,
        port: int | str,
        *,
        name: str,
        sock_options: tuple[tuple[int, int, int], ...] = (),
    ) -> ConnectionServer:
        """Bind ``host``:``port`` (``SO_REUSEADDR`` set) and start serving."""
        server = cls(handler, name=name, sock_options=sock_options)
        await server.start(listen_tcp(host, port))
        return server

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already listening socket (which this server now owns)."""
        try:
            for level, option, value in self.sock_options:
                sock.setsockopt(level, option, value)
            self._server = await asyncio.start_server(self._accept, sock=sock)
        except BaseException:
            sock.close()
            raise

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
        return len(self._tasks)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except asyncio.CancelledError:
            # The server is closing. This task is the connection's top level and nobody
            # awaits its result; ending it normally keeps Python 3.11's stream callback from
            # logging a spurious traceback for a cancelled task.
            log.debug("%s: connection from %s cancelled", self.name, peer_name(writer))
        except OSError as exc:
            log.warning("%s: connection from %s broke: %s", self.name, peer_name(writer), exc)
        except Exception:
            log.exception("%s: handler failed for %s", self.name, peer_name(writer))
        finally:
            self._tasks.discard(task)
            await close_writer(writer)

    async def aclose(self) -> None:
        """Stop listening, cancel every connection, and wait for them to finish."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
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
