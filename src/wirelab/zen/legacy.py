"""The ``asyncore``/``asynchat`` Zen server (chapter 7, over TCP; F35, the book's srv_legacy2.py).

The book's last event-loop server was written on two modules that Python 3.12 removed:
``asyncore`` (a ``select``/``poll`` loop over a map of *dispatcher* objects, one per socket)
and ``asynchat`` (a dispatcher that splits input on a terminator and queues output with
``push``). They live on as maintained backports that install the same module names
(``pyasyncore``/``pyasynchat``, see docs/decisions/0052-asyncore-backports.md); on Python 3.11
the standard library's own copies are used.

The design is the book's: an acceptor dispatcher, an ``async_chat`` per connection, a loop of
``poll`` calls. What it adds is what the other architectures have:

* the shared sans-I/O core frames the questions (the chat's terminator is ``None``: every
  read goes to :meth:`ZenChat.collect_incoming_data`), so questions over ``max_question`` get
  ``Error: question too long.`` and a close, and the buffer cannot grow without limit;
* answers queued for a client are counted as ``push`` adds them and ``send`` takes them; past
  ``max_output`` the connection stops being *readable* (so the loop stops reading its
  questions) until the client catches up, and a read that owes more is answered a share at a
  time as the client takes them;
* a private socket map (not asyncore's global one), so several servers run in one process;
* idle connections are swept, running out of descriptors pauses accepting, ``max_connections``
  stops accepting, and an error on one connection is one log line and a close (asyncore's
  default ``handle_error`` printed a traceback to stdout);
* the simulated-work delay is a timer heap, as in the ``selectors`` loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from wirelab.errors import ServiceUnavailable
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

if TYPE_CHECKING:
    from typing_extensions import Buffer

try:
    with warnings.catch_warnings():
        # Python 3.11's own copies warn that they are going away; the backports do not.
        warnings.simplefilter("ignore", DeprecationWarning)
        import asynchat
        import asyncore
except ImportError as exc:  # pragma: no cover - only on 3.12+ without the backports
    raise ServiceUnavailable(
        "the asyncore architecture needs the asyncore and asynchat backports on Python 3.12 "
        "and later (pip install pyasyncore pyasynchat)"
    ) from exc

#: ``asyncore`` and ``asynchat`` are re-exported for the book's design in ``book.py``.
__all__ = ["AsyncoreServer", "ZenChat", "asynchat", "asyncore", "start_asyncore"]

log = logging.getLogger("wirelab.zen.server")

_IDLE_TICKS = 4
_ACCEPTS_PER_WAKE = 64


class ZenChat(asynchat.async_chat):
    """One client: asynchat's buffered reader and output queue around the sans-I/O core."""

    ac_in_buffer_size = RECV_SIZE

    def __init__(self, sock: socket.socket, server: AsyncoreServer) -> None:
        super().__init__(sock, map=server.map)
        self.set_terminator(None)  # every byte to collect_incoming_data: the core frames
        self.server = server
        self.config = server.config
        self.core = ZenServerCore(server.config.max_question, server.config.max_output)
        self.peer = peer_name(sock)
        self.queued = 0
        self.active = True
        self.idle = 0
        self.closing = False

    # asynchat's hooks --------------------------------------------------------------------

    def collect_incoming_data(self, data: bytes) -> None:
        """Everything read: answer the questions it completes (a share at most)."""
        self.active = True
        core = self.core
        if self.config.delay:
            answers = core.receive_answers(data)
            while core.backlogged:  # the delay paces these answers; schedule them all
                answers += core.receive_answers(b"")
            self.server.pacer.schedule(self, answers)
        else:
            out = core.receive_data(data)
            if out:
                self.push_answer(out)
            self._pump()
        self._check_closing()

    def found_terminator(self) -> None:  # pragma: no cover - no terminator is ever set
        """Never called: with a ``None`` terminator asynchat passes all data through."""

    def readable(self) -> bool:
        """Read this client's questions only while its answers are being taken."""
        return not (self.closing or self.core.backlogged or self.queued > self.config.max_output)

    def send(self, data: Buffer) -> int:
        """asyncore's ``send``, counting what left the queue (and the client's progress)."""
        sent: int = super().send(data)
        if sent:
            self.queued -= sent
            self.active = True
        return sent

    def handle_write(self) -> None:
        """Send what is queued; once the client has caught up, answer more of a backlog."""
        super().handle_write()
        if self.connected:
            self._pump()
            self._check_closing()

    def handle_close(self) -> None:
        """The client closed (or asynchat gave up on the socket)."""
        if self.core.pending and not self.core.backlogged and not self.closing:
            log.info("%s closed in the middle of a question", self.peer)
        self.close()

    def handle_error(self) -> None:
        """One line, then close: asyncore's default printed a traceback on stdout."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.info("%s: %s", self.peer, exc.strerror or exc)
        else:
            log.error("%s: unexpected %s: %s", self.peer, type(exc).__name__, exc)
        self.close()

    def log_info(self, message: str, type: str = "info") -> None:
        """asyncore's own messages go to our logger, never to stdout."""
        log.info("%s: asyncore: %s", self.peer, message)

    # ours ---------------------------------------------------------------------------------

    def push_answer(self, out: bytes) -> None:
        """Queue answers (``push`` also tries to send them at once)."""
        if not self.connected:
            return
        self.queued += len(out)
        self.push(out)

    def _pump(self) -> None:
        core = self.core
        while core.backlogged and self.queued <= self.config.max_output and self.connected:
            out = core.receive_data(b"")
            if out:
                self.push_answer(out)

    def _check_closing(self) -> None:
        if self.core.closing and not self.closing and self.connected:
            log.warning(
                "%s sent a question over %d bytes; closing", self.peer, self.core.max_question
            )
            self.closing = True
            if not self.server.pacer.owes(self):
                self.close_when_done()

    def close(self) -> None:
        """Leave the map and close the socket (idempotent)."""
        self.server.conns.discard(self)
        with contextlib.suppress(OSError):
            super().close()


class _Acceptor(asyncore.dispatcher):
    """The listening socket: accepts while the server has room and descriptors."""

    def __init__(self, listener: socket.socket, server: AsyncoreServer) -> None:
        super().__init__(listener, map=server.map)
        self.accepting = True  # listen() was called before (the book set this too)
        self.server = server
        self.listener = listener

    def readable(self) -> bool:
        return self.server.accepting_now()

    def writable(self) -> bool:
        return False

    def handle_accept(self) -> None:
        server = self.server
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                pair = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    accept_backoff_log(exc)
                    server.accept_paused_until = time.monotonic() + ACCEPT_BACKOFF
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                log.error("accept failed: %s", exc)
                return
            sock = pair[0]
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                chat = ZenChat(sock, server)
            except OSError as exc:  # the client reset before we could look at it
                log.info("a new connection failed at once: %s", exc.strerror or exc)
                sock.close()
                continue
            server.conns.add(chat)
            if len(server.conns) >= server.config.max_connections:
                log.warning("%d connections open; pausing accepts", len(server.conns))
                return

    def handle_error(self) -> None:
        log.error("accept failed: %s", sys.exc_info()[1])

    def log_info(self, message: str, type: str = "info") -> None:
        log.info("asyncore: %s", message)


class _Waker(asyncore.dispatcher):
    """The read end of a socket pair: a byte on it stops the loop."""

    def __init__(self, sock: socket.socket, server: AsyncoreServer) -> None:
        super().__init__(sock, map=server.map)
        self.server = server

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(OSError):
            self.recv(64)
        self.server.stopping = True

    def handle_close(self) -> None:
        self.server.stopping = True


class AsyncoreServer:
    """asyncore's loop over a private map: call :meth:`run` in a thread, :meth:`stop` anywhere."""

    def __init__(self, listener: socket.socket, config: ZenConfig) -> None:
        self.config = config
        self.map: dict[int, Any] = {}
        self.conns: set[ZenChat] = set()
        self.stopping = False
        self.accept_paused_until = 0.0
        self.pacer: Pacer[ZenChat] = Pacer(config.delay)
        listener.listen(1024)
        self._acceptor = _Acceptor(listener, self)
        wake_r, self._wake_w = socket.socketpair()
        self._waker = _Waker(wake_r, self)

    def accepting_now(self) -> bool:
        """Room for another connection, and not pausing after EMFILE."""
        if self.accept_paused_until:
            if time.monotonic() < self.accept_paused_until:
                return False
            self.accept_paused_until = 0.0
        return len(self.conns) < self.config.max_connections

    def stop(self) -> None:
        """Ask the loop to stop (thread-safe)."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _fire_timers(self, now: float) -> None:
        for chat, answer in self.pacer.pop_due(now):
            if not chat.connected:
                continue
            chat.push_answer(answer)
            if chat.closing and not self.pacer.owes(chat):
                chat.close_when_done()

    def _sweep(self) -> None:
        for chat in list(self.conns):
            if chat.active or self.pacer.owes(chat):
                chat.active = False
                chat.idle = 0
                continue
            chat.idle += 1
            if chat.idle >= _IDLE_TICKS:
                log.warning(
                    "%s made no progress for %g s; closing", chat.peer, self.config.idle_timeout
                )
                chat.close()

    def run(self) -> None:
        """Serve until :meth:`stop`; then close every connection and the listener."""
        tick = self.config.idle_timeout / _IDLE_TICKS
        next_sweep = time.monotonic() + tick
        try:
            while not self.stopping:
                now = time.monotonic()
                timeout = next_sweep - now
                due = self.pacer.next_due()
                if due is not None:
                    timeout = min(timeout, due - now)
                if self.accept_paused_until:
                    timeout = min(timeout, self.accept_paused_until - now)
                asyncore.poll2(max(timeout, 0.0), self.map)
                now = time.monotonic()
                if due is not None:
                    self._fire_timers(now)
                if now >= next_sweep:
                    self._sweep()
                    next_sweep = now + tick
        finally:
            for chat in list(self.conns):
                chat.close()
            self._acceptor.close()
            self._waker.close()
            self._wake_w.close()


def start_asyncore(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with asyncore/asynchat (the book's ``srv_legacy2.py`` design) in one thread.

    Raises:
        ServiceUnavailable: Python 3.12+ without the ``pyasyncore``/``pyasynchat`` backports.
    """
    server = AsyncoreServer(listener, config)
    address = listener.getsockname()[:2]
    thread = threading.Thread(target=server.run, name="zen-asyncore", daemon=True)
    thread.start()

    def stop() -> None:
        server.stop()
        thread.join(10.0)

    return RunningServer("asyncore", address, stop)
