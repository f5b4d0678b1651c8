"""Event-loop Zen servers on asyncio (chapter 7, over TCP): callbacks, streams, uvloop.

* ``asyncio-protocol`` (F37): a :class:`asyncio.Protocol`; the loop calls ``data_received``
  with whatever arrived, the core turns it into answers, ``transport.write`` queues them.
* ``asyncio-streams`` (F38): a coroutine per connection, ``await reader.read()`` then
  ``writer.write()`` and ``await writer.drain()`` (the book's version never drained and never
  closed its writer, and no longer runs: ``asyncio.coroutine`` is gone since 3.11).
* ``uvloop``: the same Protocol on uvloop's libuv-based loop, the fastest in pure Python.

Backpressure: a transport whose queued answers pass ``max_output`` stops reading that client
(``pause_writing`` -> ``pause_reading``) until they drain, and a read that owes more answers
than that is answered a share at a time as they drain (the core's backlog). Idle connections
are found by one sweeper task instead of a timer per connection: each connection only sets a
flag when it makes progress, which keeps the per-request cost to one attribute store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

from wirelab.errors import ServiceUnavailable
from wirelab.zen._common import RECV_SIZE, RESOURCE_ERRNOS, RunningServer, accept_backoff_log
from wirelab.zen._core import ZenConfig, ZenServerCore

__all__ = [
    "ZenProtocol",
    "new_uvloop",
    "serve_zen",
    "start_asyncio_protocol",
    "start_asyncio_streams",
    "start_uvloop",
]

log = logging.getLogger("wirelab.zen.server")

#: Sweeps of the idle checker per ``idle_timeout``: a connection is dropped after making no
#: progress for between ``idle_timeout`` and ``idle_timeout * (1 + 1/IDLE_TICKS)`` seconds.
IDLE_TICKS = 4

#: The listen backlog of the event-loop servers (a burst of a thousand connects fits).
BACKLOG = 1024


def new_uvloop() -> asyncio.AbstractEventLoop:
    """A new uvloop event loop.

    Raises:
        ServiceUnavailable: uvloop is not installed.
    """
    try:
        import uvloop
    except ImportError as exc:
        raise ServiceUnavailable("uvloop is not installed (pip install uvloop)") from exc
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class _Tracked:
    """A connection as the sweeper sees it."""

    __slots__ = ("active", "idle")

    def __init__(self) -> None:
        self.active = True
        self.idle = 0

    def abort(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class _State:
    """What one server's connections share: the config and the set of live connections."""

    def __init__(self, config: ZenConfig) -> None:
        self.config = config
        self.conns: set[_Tracked] = set()
        self.accepted = 0

    async def sweep(self) -> None:
        tick = self.config.idle_timeout / IDLE_TICKS
        while True:
            await asyncio.sleep(tick)
            for conn in list(self.conns):
                if conn.active:
                    conn.active = False
                    conn.idle = 0
                    continue
                conn.idle += 1
                if conn.idle >= IDLE_TICKS:
                    log.warning(
                        "%s made no progress for %g s; closing",
                        conn.describe(),
                        self.config.idle_timeout,
                    )
                    self.conns.discard(conn)
                    conn.abort()

    def abort_all(self) -> None:
        for conn in list(self.conns):
            conn.abort()
        self.conns.clear()


def _describe(transport: asyncio.BaseTransport | None) -> str:
    if transport is None:
        return "?"
    peer = transport.get_extra_info("peername")
    if not peer:
        return "?"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class ZenProtocol(asyncio.Protocol, _Tracked):
    """One connection, served by callbacks: bytes arrive, answers are written."""

    __slots__ = ("_delay", "_due", "_paused", "core", "state", "transport")

    def __init__(self, state: _State) -> None:
        _Tracked.__init__(self)
        self.state = state
        self.core = ZenServerCore(state.config.max_question, state.config.max_output)
        self.transport: asyncio.Transport | None = None
        self._delay = bool(state.config.delay)
        self._due = 0.0
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only look alike.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        state = self.state
        if len(state.conns) >= state.config.max_connections:
            log.warning("%d connections open; refusing %s", len(state.conns), _describe(transport))
            transport.abort()
            return
        transport.set_write_buffer_limits(high=state.config.max_output)
        state.conns.add(self)
        state.accepted += 1

    def data_received(self, data: bytes) -> None:
        self.active = True
        core = self.core
        if self._delay:
            answers = core.receive_answers(data)
            while core.backlogged:  # the delay paces these answers; schedule them all
                answers += core.receive_answers(b"")
            self._write_later(answers)
        else:
            out = core.receive_data(data)
            if out:
                self.transport.write(out)  # type: ignore[union-attr]
            if core.backlogged:
                self._pump()
        if core.closing:
            self._check_closing()

    def _pump(self) -> None:
        """Answer a backlog a share at a time, until the transport's buffer is full."""
        core = self.core
        transport = self.transport
        assert transport is not None
        while core.backlogged and not self._paused and not transport.is_closing():
            out = core.receive_data(b"")
            if out:
                transport.write(out)  # may call pause_writing, which ends the loop
        if core.backlogged:
            transport.pause_reading()  # resume_writing goes on with the backlog

    def _check_closing(self) -> None:
        core = self.core
        if core.closing and not self.transport.is_closing():  # type: ignore[union-attr]
            log.warning(
                "%s sent a question over %d bytes; closing",
                _describe(self.transport),
                core.max_question,
            )
            if not self._delay:
                self.transport.close()  # type: ignore[union-attr]

    def _write_later(self, answers: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        delay = self.state.config.delay
        transport = self.transport
        assert transport is not None
        for answer in answers:
            self._due = max(self._due, loop.time()) + delay
            loop.call_at(self._due, self._write_due, transport, answer)
        if self.core.closing:
            loop.call_at(self._due, transport.close)

    def _write_due(self, transport: asyncio.Transport, answer: bytes) -> None:
        if not transport.is_closing():
            transport.write(answer)

    def eof_received(self) -> bool | None:
        if self.core.pending:
            log.info("%s closed in the middle of a question", _describe(self.transport))
        return None  # close our side too

    def pause_writing(self) -> None:
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        self.active = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.core.backlogged:
            self._pump()
            if self.core.closing:
                self._check_closing()
        if not self.core.backlogged and not transport.is_closing():
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.conns.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def describe(self) -> str:
        return _describe(self.transport)


class _StreamConn(_Tracked):
    __slots__ = ("writer",)

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.writer = writer

    def abort(self) -> None:
        self.writer.transport.abort()

    def describe(self) -> str:
        return _describe(self.writer.transport)


def _stream_handler(
    state: _State, tasks: set[asyncio.Task[Any]]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    config = state.config

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        conn = _StreamConn(writer)
        core = ZenServerCore(config.max_question, config.max_output)
        if len(state.conns) >= config.max_connections:
            log.warning("%d connections open; refusing %s", len(state.conns), conn.describe())
            writer.transport.abort()
            tasks.discard(task)
            return
        transport = writer.transport
        transport.set_write_buffer_limits(high=config.max_output)
        state.conns.add(conn)
        state.accepted += 1
        try:
            while True:
                data = await reader.read(RECV_SIZE)
                if not data:
                    if core.pending:
                        log.info("%s closed in the middle of a question", conn.describe())
                    break
                conn.active = True
                if config.delay:
                    for answer in core.receive_answers(data):
                        await asyncio.sleep(config.delay)
                        writer.write(answer)
                else:
                    out = core.receive_data(data)
                    if out:
                        writer.write(out)
                if transport.get_write_buffer_size():
                    await writer.drain()  # only when the kernel did not take it all
                while core.backlogged:  # a share at a time, as the client takes them
                    if config.delay:
                        for answer in core.receive_answers(b""):
                            await asyncio.sleep(config.delay)
                            writer.write(answer)
                    else:
                        writer.write(core.receive_data(b""))
                    if transport.get_write_buffer_size():
                        await writer.drain()
                        conn.active = True  # the client took a share: it is making progress
                if core.closing:
                    log.warning(
                        "%s sent a question over %d bytes; closing",
                        conn.describe(),
                        config.max_question,
                    )
                    break
        except OSError as exc:
            log.info("%s: %s", conn.describe(), exc.strerror or exc)
        finally:
            state.conns.discard(conn)
            writer.close()
            tasks.discard(task)

    return handle


def _one_line_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Report asyncio's "out of descriptors" accept errors as our one rate-limited line.

    asyncio pauses accepting for a second on EMFILE/ENFILE (as we want) but logs each one
    with a traceback; everything else still goes to the loop's previous handler.
    """
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            accept_backoff_log(exc)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def serve_zen(
    sock: socket.socket,
    config: ZenConfig,
    *,
    streams: bool = False,
    ready: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    idle_exit: float | None = None,
) -> None:
    """Serve Zen on the listening ``sock`` until ``stop`` is set (or the task is cancelled).

    Args:
        sock: a bound TCP socket; it is put in listening mode and closed on return.
        config: limits and behaviour.
        streams: use a coroutine per connection (asyncio streams) instead of a Protocol.
        ready: called once the server accepts connections.
        stop: set it to stop; every connection is then aborted.
        idle_exit: also stop once nobody has been connected for this many seconds (the
            inetd ``wait`` child).
    """
    loop = asyncio.get_running_loop()
    _one_line_accept_errors(loop)
    stop = stop or asyncio.Event()
    state = _State(config)
    tasks: set[asyncio.Task[Any]] = set()
    server: asyncio.Server
    if streams:
        server = await asyncio.start_server(
            _stream_handler(state, tasks), sock=sock, backlog=BACKLOG
        )
    else:
        server = await loop.create_server(lambda: ZenProtocol(state), sock=sock, backlog=BACKLOG)
    sweeper = loop.create_task(state.sweep())
    watcher = loop.create_task(_exit_when_idle(state, idle_exit, stop)) if idle_exit else None
    try:
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        server.close()
        sweeper.cancel()
        if watcher is not None:
            watcher.cancel()
        state.abort_all()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5.0)
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5.0)


async def _exit_when_idle(state: _State, seconds: float, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    busy_at, seen = loop.time(), state.accepted
    while True:
        await asyncio.sleep(min(0.1, seconds / 4))
        if state.conns or state.accepted != seen:
            busy_at, seen = loop.time(), state.accepted
        elif loop.time() - busy_at >= seconds:
            stop.set()
            return


def _start_in_thread(
    arch: str,
    sock: socket.socket,
    config: ZenConfig,
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
    *,
    streams: bool = False,
) -> RunningServer:
    loop = loop_factory()
    stop_event: asyncio.Event | None = None
    ready = threading.Event()
    failures: list[BaseException] = []

    async def main() -> None:
        nonlocal stop_event
        stop_event = asyncio.Event()
        await serve_zen(sock, config, streams=streams, ready=ready.set, stop=stop_event)

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported to the caller of start, never lost
            failures.append(exc)
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    address = sock.getsockname()[:2]
    thread = threading.Thread(target=run, name=f"zen-{arch}", daemon=True)
    thread.start()
    if not ready.wait(10.0) or failures:
        if thread.is_alive() and stop_event is not None:
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(10.0)
        sock.close()
        raise failures[0] if failures else RuntimeError(f"{arch} server did not start")

    def stop() -> None:
        if thread.is_alive() and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(10.0)

    return RunningServer(arch, address, stop)


def start_asyncio_protocol(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with asyncio Protocol callbacks on the standard event loop, in a thread."""
    return _start_in_thread("asyncio-protocol", listener, config, asyncio.new_event_loop)


def start_asyncio_streams(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with a stream coroutine per connection on the standard event loop, in a thread."""
    return _start_in_thread(
        "asyncio-streams", listener, config, asyncio.new_event_loop, streams=True
    )


def start_uvloop(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with Protocol callbacks on uvloop, in a thread."""
    new_uvloop().close()  # fail here, in the caller, if uvloop is missing
    return _start_in_thread("uvloop", listener, config, new_uvloop)
