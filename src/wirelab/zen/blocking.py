"""Blocking Zen servers (chapter 7, over TCP): one at a time, a thread pool, socketserver.

* ``single`` (F32): one thread, one client at a time; everyone else waits in the backlog.
* ``threadpool`` (F33): a fixed number of threads, all blocked in ``accept`` on the same
  listener; each serves one client at a time, so N threads serve N clients at once.
* ``threaded`` (F34): ``socketserver`` with ``ThreadingMixIn``, a thread per connection, but
  bounded: at ``max_threads`` connections it stops accepting until one ends (the book's was
  unbounded, so enough clients could start enough threads to exhaust memory).

Each conversation runs :func:`converse`: the sans-I/O core, kernel-side timeouts (a client
that stalls mid-question, or never reads its answers, is dropped after ``idle_timeout``), and
one log line when a client misbehaves.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import socketserver
import threading
import time
from typing import Any

from wirelab.zen._common import (
    ACCEPT_BACKOFF,
    RECV_SIZE,
    RESOURCE_ERRNOS,
    RunningServer,
    accept_backoff_log,
    peer_name,
    set_os_timeouts,
)
from wirelab.zen._core import ZenConfig, ZenServerCore

__all__ = ["converse", "start_single", "start_threaded", "start_threadpool"]

log = logging.getLogger("wirelab.zen.server")


def converse(sock: socket.socket, config: ZenConfig) -> None:
    """Answer one client's questions until it closes, misbehaves or stalls; then close.

    ``sock`` must be a blocking socket; it is closed on return.
    """
    peer = peer_name(sock)
    core = ZenServerCore(config.max_question, config.max_output)
    delay = config.delay
    try:
        set_os_timeouts(sock, config.idle_timeout)
        recv = sock.recv
        sendall = sock.sendall
        while True:
            data = recv(RECV_SIZE)
            if not data:
                if core.pending:
                    log.info("%s closed in the middle of a question", peer)
                break
            if delay:
                for answer in core.receive_answers(data):
                    time.sleep(delay)
                    sendall(answer)
            else:
                out = core.receive_data(data)
                if out:
                    sendall(out)
            while core.backlogged:  # sendall returned: the client took the last share
                if delay:
                    for answer in core.receive_answers(b""):
                        time.sleep(delay)
                        sendall(answer)
                else:
                    sendall(core.receive_data(b""))
            if core.closing:
                log.warning("%s sent a question over %d bytes; closing", peer, config.max_question)
                break
    except BlockingIOError:
        log.warning("%s made no progress for %g s; closing", peer, config.idle_timeout)
    except OSError as exc:
        log.info("%s: %s", peer, exc.strerror or exc)
    finally:
        sock.close()


class _Connections:
    """The sockets being served, so that stop can shut them down and wake their threads."""

    def __init__(self) -> None:
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)

    def shutdown_all(self) -> None:
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _accept_loop(
    listener: socket.socket, config: ZenConfig, stopping: threading.Event, live: _Connections
) -> None:
    while not stopping.is_set():
        try:
            sock, _ = listener.accept()
        except OSError as exc:
            if stopping.is_set():
                return
            if exc.errno in RESOURCE_ERRNOS:
                accept_backoff_log(exc)
                time.sleep(ACCEPT_BACKOFF)
                continue
            if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                continue
            log.error("accept failed: %s; this thread stops", exc)
            return
        live.add(sock)
        try:
            converse(sock, config)
        finally:
            live.discard(sock)


def _start_accepting_threads(
    arch: str, listener: socket.socket, config: ZenConfig, count: int
) -> RunningServer:
    listener.setblocking(True)
    stopping = threading.Event()
    live = _Connections()
    threads = [
        threading.Thread(
            target=_accept_loop,
            args=(listener, config, stopping, live),
            name=f"zen-{arch}-{i}",
            daemon=True,
        )
        for i in range(count)
    ]
    for thread in threads:
        thread.start()

    def stop() -> None:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes every thread blocked in accept()
        live.shutdown_all()
        for thread in threads:
            thread.join(10.0)
        listener.close()

    return RunningServer(arch, listener.getsockname()[:2], stop)


def start_single(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve one client at a time in one thread (the book's ``srv_single``)."""
    return _start_accepting_threads("single", listener, config, 1)


def start_threadpool(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve ``config.workers`` clients at once, each thread blocked in ``accept``."""
    return _start_accepting_threads("threadpool", listener, config, config.workers or 4)


class _Handler(socketserver.BaseRequestHandler):
    server: _BoundedThreadingServer

    def handle(self) -> None:
        sock = self.request
        assert isinstance(sock, socket.socket)
        self.server.live.add(sock)
        try:
            converse(sock, self.server.config)
        finally:
            self.server.live.discard(sock)

    def finish(self) -> None:
        pass


class _BoundedThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """``ThreadingMixIn`` with a bound: at ``max_threads`` live threads, accepting waits."""

    daemon_threads = False  # joined by server_close(): stop leaves no thread behind
    block_on_close = True

    def __init__(self, listener: socket.socket, config: ZenConfig) -> None:
        super().__init__(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.config = config
        self.live = _Connections()
        self.slots = threading.BoundedSemaphore(config.max_threads)
        self.stopping = threading.Event()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Wait for a free slot before starting a thread; the connection waits meanwhile.
        while not self.slots.acquire(timeout=0.2):
            if self.stopping.is_set():
                return False
        return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return self.socket.accept()
        except OSError as exc:
            if exc.errno in RESOURCE_ERRNOS:
                accept_backoff_log(exc)
                time.sleep(ACCEPT_BACKOFF)
            raise

    def shutdown_request(self, request: Any) -> None:
        # converse() closed it already; a refused request (stopping) is closed here.
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("unexpected error serving %s", client_address)


def start_threaded(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """A thread per connection through ``socketserver``, at most ``config.max_threads``."""
    listener.setblocking(False)
    server = _BoundedThreadingServer(listener, config)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="zen-threaded", daemon=True
    )
    thread.start()

    def stop() -> None:
        server.stopping.set()
        server.shutdown()
        server.live.shutdown_all()
        server.server_close()  # joins the connection threads (block_on_close)
        thread.join(10.0)

    return RunningServer("threaded", listener.getsockname()[:2], stop)
