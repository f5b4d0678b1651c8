"""A hand-written ``selectors`` event loop serving Zen (chapter 7, over TCP; the book's F36).

One thread, non-blocking sockets, and per-connection state: the sans-I/O core, the answers
not yet sent, and an activity flag. Readiness flips between reading and writing as the book's
``poll`` loop did, with the fixes its weaknesses called for:

* every ``recv``/``send``/``accept`` error is caught per connection, so one reset cannot stop
  the server; a connection is unregistered *before* its socket closes (no stale descriptor
  races with a new ``accept``);
* a partial send keeps the rest; more than ``max_output`` unsent bytes stop reading from that
  client until it catches up, and a read that owes more answers than that is answered a
  share at a time as the client takes them (the core's backlog);
* idle connections (no progress for ``idle_timeout``) are closed by a periodic sweep;
* running out of descriptors (EMFILE) pauses accepting for a moment instead of spinning;
* the simulated-work delay is a timer heap, so a slow answer does not block other clients.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
import time

from wirelab.zen._common import (
    ACCEPT_BACKOFF,
    RECV_SIZE,
    RESOURCE_ERRNOS,
    Pacer,
    RunningServer,
    accept_backoff_log,
    peer_name,
)
from wirelab.zen._core import ZenConfig, ZenServerCore

__all__ = ["SelectorServer", "start_selectors"]

log = logging.getLogger("wirelab.zen.server")

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_IDLE_TICKS = 4
_ACCEPTS_PER_WAKE = 64


class _Conn:
    __slots__ = ("active", "closing", "core", "events", "idle", "out", "peer", "sock")

    def __init__(self, sock: socket.socket, config: ZenConfig) -> None:
        self.sock = sock
        self.core = ZenServerCore(config.max_question, config.max_output)
        self.out = b""
        self.peer = peer_name(sock)
        self.events = _READ
        self.active = True
        self.idle = 0
        self.closing = False


class SelectorServer:
    """The loop: call :meth:`run` in a thread; :meth:`stop` from any thread."""

    def __init__(self, listener: socket.socket, config: ZenConfig) -> None:
        self.listener = listener
        self.config = config
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._pacer: Pacer[_Conn] = Pacer(config.delay)
        self._accept_paused_until = 0.0
        self._accepting = False
        listener.setblocking(False)
        listener.listen(1024)
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, _READ, None)
        self._set_accepting(True)

    def stop(self) -> None:
        """Ask the loop to stop (thread-safe)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _set_accepting(self, on: bool) -> None:
        if on and not self._accepting:
            self.sel.register(self.listener, _READ, self.listener)
        elif not on and self._accepting:
            self.sel.unregister(self.listener)
        self._accepting = on

    def run(self) -> None:
        """Serve until :meth:`stop`; then close every connection and the listener."""
        tick = self.config.idle_timeout / _IDLE_TICKS
        next_sweep = time.monotonic() + tick
        try:
            while not self._stopping:
                now = time.monotonic()
                timeout = next_sweep - now
                due = self._pacer.next_due()
                if due is not None:
                    timeout = min(timeout, due - now)
                if not self._accepting and self._accept_paused_until:
                    timeout = min(timeout, self._accept_paused_until - now)
                for key, mask in self.sel.select(max(timeout, 0.0)):
                    data = key.data
                    if data is None:
                        return
                    if data is self.listener:
                        self._accept()
                        continue
                    if mask & _READ:
                        self._on_readable(data)
                    if mask & _WRITE and data.sock.fileno() >= 0:
                        self._on_writable(data)
                now = time.monotonic()
                if due is not None:
                    self._fire_timers(now)
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    if len(self.conns) < self.config.max_connections:
                        self._set_accepting(True)
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + tick
        finally:
            for conn in list(self.conns.values()):
                self._close(conn)
            self.sel.close()
            self.listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    accept_backoff_log(exc)
                    self._set_accepting(False)
                    self._accept_paused_until = time.monotonic() + ACCEPT_BACKOFF
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                log.error("accept failed: %s", exc)
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, self.config)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, _READ, conn)
            if len(self.conns) >= self.config.max_connections:
                log.warning("%d connections open; pausing accepts", len(self.conns))
                self._set_accepting(False)
                return

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            log.info("%s: %s", conn.peer, exc.strerror or exc)
            self._close(conn)
            return
        if not data:
            if conn.core.pending:
                log.info("%s closed in the middle of a question", conn.peer)
            self._close(conn)
            return
        conn.active = True
        core = conn.core
        if self.config.delay:
            answers = core.receive_answers(data)
            while core.backlogged:  # the delay paces these answers; schedule them all
                answers += core.receive_answers(b"")
            self._pacer.schedule(conn, answers)
        else:
            out = core.receive_data(data)
            if out:
                self._send(conn, out)
            if core.backlogged:
                self._pump(conn)
        self._check_closing(conn)

    def _check_closing(self, conn: _Conn) -> None:
        core = conn.core
        if core.closing and not conn.closing:
            log.warning("%s sent a question over %d bytes; closing", conn.peer, core.max_question)
            conn.closing = True
            if not conn.out and not self._pending_timers(conn):
                self._close(conn)
            else:
                self._want(conn, _WRITE)

    def _send(self, conn: _Conn, out: bytes) -> None:
        if conn.out:
            conn.out += out
        else:
            try:
                sent = conn.sock.send(out)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                log.info("%s: %s", conn.peer, exc.strerror or exc)
                self._close(conn)
                return
            if sent == len(out):
                return
            conn.out = out[sent:]
        # Unsent answers: wait for room; stop reading while too much is queued.
        self._want(conn, _WRITE | self._reading(conn))

    def _reading(self, conn: _Conn) -> int:
        """``_READ`` if this client's questions may be read now, else 0."""
        if conn.core.backlogged or len(conn.out) > self.config.max_output:
            return 0
        return _READ

    def _pump(self, conn: _Conn) -> None:
        """Answer a backlog a share at a time while the client takes the answers."""
        core = conn.core
        while core.backlogged and len(conn.out) <= self.config.max_output:
            if conn.sock.fileno() < 0:
                return
            out = core.receive_data(b"")
            if out:
                self._send(conn, out)
        if core.backlogged and conn.sock.fileno() >= 0:
            self._want(conn, _WRITE)

    def _on_writable(self, conn: _Conn) -> None:
        if not conn.out:
            self._want(conn, _READ)
            return
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError as exc:
            log.info("%s: %s", conn.peer, exc.strerror or exc)
            self._close(conn)
            return
        conn.active = True
        conn.out = conn.out[sent:]
        if conn.core.backlogged and len(conn.out) <= self.config.max_output:
            self._pump(conn)
            self._check_closing(conn)
            if conn.sock.fileno() < 0:
                return
        if conn.out:
            self._want(conn, _WRITE | self._reading(conn))
        elif conn.closing:
            if not self._pending_timers(conn):
                self._close(conn)
        else:
            self._want(conn, _READ)

    def _want(self, conn: _Conn, events: int) -> None:
        if conn.closing:
            events &= ~_READ
            events = events or _WRITE
        if events != conn.events and conn.sock.fileno() >= 0:
            conn.events = events
            self.sel.modify(conn.sock, events, conn)

    def _pending_timers(self, conn: _Conn) -> bool:
        return self._pacer.owes(conn)

    def _fire_timers(self, now: float) -> None:
        for conn, answer in self._pacer.pop_due(now):
            if conn.sock.fileno() < 0:
                continue
            self._send(conn, answer)
            if conn.closing and not conn.out and not self._pending_timers(conn):
                self._close(conn)

    def _sweep(self) -> None:
        for conn in list(self.conns.values()):
            if conn.active:
                conn.active = False
                conn.idle = 0
                continue
            conn.idle += 1
            if conn.idle >= _IDLE_TICKS:
                log.warning(
                    "%s made no progress for %g s; closing", conn.peer, self.config.idle_timeout
                )
                self._close(conn)

    def _close(self, conn: _Conn) -> None:
        sock = conn.sock
        fd = sock.fileno()
        if fd < 0:
            return
        self.conns.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)  # before close: no stale descriptor in the selector
        sock.close()
        if (
            not self._accepting
            and not self._accept_paused_until
            and not self._stopping
            and len(self.conns) < self.config.max_connections
        ):
            self._set_accepting(True)


def start_selectors(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with the hand-written ``selectors`` loop in one thread."""
    server = SelectorServer(listener, config)
    address = listener.getsockname()[:2]
    thread = threading.Thread(target=server.run, name="zen-selectors", daemon=True)
    thread.start()

    def stop() -> None:
        server.stop()
        thread.join(10.0)

    return RunningServer("selectors", address, stop)
