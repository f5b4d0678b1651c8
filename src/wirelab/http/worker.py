"""gunicorn's ``gthread`` whose threads poll for requests themselves: ``http serve``'s default.

Stock ``gthread`` passes every request on a kept-alive connection between threads twice: the
worker's main thread polls the connections, hands a readable one to a pool thread through the
executor's queue, and the pool thread, once it has answered, hands the connection back
through a pipe so the main thread can poll it again (``epoll_ctl`` twice, a pipe write and
read, a queue, a done-callback). Each hand-over wakes a thread and passes the GIL; under load
(100 connections on 2 cores) that, not HTTP, is what made gthread (and our first version,
whose threads lingered on their own connection) spend 240-370 µs of CPU per request against
waitress's 130-170 (decision 0092).

:class:`LingerThreadWorker` keeps gunicorn's parser, limits, responses, TLS, HTTP/2 and
per-request handling (its ``handle``), and replaces only who waits for what:

* **The pool threads wait on the poller themselves** (leader/followers): one ``epoll`` holds
  every idle connection with ``EPOLLONESHOT``; each of the ``--threads`` threads sits in
  ``epoll_wait`` for one ready connection, answers it, re-arms it with one ``epoll_ctl`` and
  waits again. The kernel wakes one waiting thread per ready connection and no thread is
  handed anything. A request costs ``epoll_wait``, ``recv``, ``send`` and ``epoll_ctl``.
* **A slow application holds only its own thread**: the others go on serving every other
  connection (tested). An idle kept-alive connection, or a new one that has sent nothing,
  holds no thread: it waits in the poller, up to the keep-alive timeout.
* The main thread accepts, closes connections idle past their timeout, tells the arbiter it
  is alive, and on stop does what gthread does (no new connections, kept-alive ones closed
  within ``STOP_KEEPALIVE_LINGER``, the graceful timeout for requests in flight).
* **Fewer system calls that let go of the GIL** (under load each is a thread switch): the
  drain of a request's body (three ``settimeout`` calls, each an ``ioctl``) is skipped when
  the body was read to its end (a body the application left unread is drained as before,
  under the same deadline); ``setblocking`` on a socket already in that mode makes no call
  (:class:`_QuietSocket`); the ``Date`` header is formatted once a second, not per response.
* Each response's head goes out with the first piece of its body, in one ``sendall``
  (:class:`CoalescingResponse`): gunicorn writes them with two. A body that streams still
  leaves piece by piece as the application yields it; only the head waits for the first
  piece or the end.

Linux only (``epoll``), like the lab. Loaded by gunicorn as ``--worker-class
wirelab.http.worker.LingerThreadWorker`` (its name from its first version, whose threads
lingered on their own connection: decision 0091).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from typing import Any

from gunicorn import util as gutil
from gunicorn.http import body as gbody
from gunicorn.http import wsgi
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

__all__ = ["CoalescingResponse", "LingerThreadWorker"]

_ARMED = select.EPOLLIN | select.EPOLLONESHOT
#: Seconds the main thread sleeps at most between checks (timeouts, the arbiter, the parent).
_TICK = 1.0


class _QuietSocket(socket.socket):
    """A socket whose ``setblocking`` and ``settimeout`` make no system call (an ``ioctl``,
    which lets go of the GIL) when the mode does not change: gunicorn sets it on every
    request."""

    __slots__ = ()

    def setblocking(self, flag: bool) -> None:
        if self.gettimeout() != (None if flag else 0.0):
            super().setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        if value != self.gettimeout():
            super().settimeout(value)


_date: tuple[int, str] = (0, "")


def _http_date(timestamp: float | None = None) -> str:
    """``gunicorn.util.http_date``, formatted once a second rather than once a response."""
    global _date
    if timestamp is not None:
        return str(_gunicorn_http_date(timestamp))
    now = int(time.time())
    cached = _date
    if cached[0] != now:
        cached = _date = (now, str(_gunicorn_http_date(now)))
    return cached[1]


_gunicorn_http_date = gutil.http_date


class _HeadHoldingSocket:
    """A connected socket whose ``sendall`` holds what it is given while ``holding`` is set,
    and sends it in front of the next write (or on :meth:`flush`)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.holding = False
        self.held = b""

    def sendall(self, data: Any, *flags: int) -> None:
        if self.holding:
            self.held += bytes(data)
            return
        if self.held:
            data, self.held = self.held + bytes(data), b""
        self._sock.sendall(data, *flags)

    def flush(self) -> None:
        if self.held:
            data, self.held = self.held, b""
            self._sock.sendall(data)

    def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        self.flush()  # the head before a body the kernel sends
        return self._sock.sendfile(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class CoalescingResponse(wsgi.Response):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's HTTP/1 response, its head held until the first body bytes (or the end)."""

    def __init__(self, req: Any, sock: Any, cfg: Any, *args: Any) -> None:
        super().__init__(req, _HeadHoldingSocket(sock), cfg, *args)

    def send_headers(self) -> None:
        if self.headers_sent:
            return
        self.sock.holding = True
        try:
            super().send_headers()
        finally:
            self.sock.holding = False

    def close(self) -> None:
        super().close()
        self.sock.flush()


def _create(
    req: Any, sock: Any, client: Any, server: Any, cfg: Any, response_class: Any = None, **kw: Any
) -> Any:
    """``gunicorn.http.wsgi.create`` with :class:`CoalescingResponse` for HTTP/1."""
    return _gunicorn_create(
        req, sock, client, server, cfg, response_class or CoalescingResponse, **kw
    )


_gunicorn_create = wsgi.create


def _body_read_to_its_end(mesg: Any) -> bool:
    """True when the request's body is known to be consumed: nothing is left to drain."""
    body = getattr(mesg, "body", None)
    if body is None:
        return True
    reader = getattr(body, "reader", None)
    return (
        isinstance(reader, gbody.LengthReader)
        and reader.length == 0
        and not body.buf.getvalue()
        and getattr(body, "failed", False) is False
    )


def _buffered(conn: Any) -> bool:
    """True when the next request's bytes are already read (pipelined, or inside TLS)."""
    if conn.parser is not None and conn.parser.unreader.buf.getvalue():
        return True
    sock = conn.sock
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


class LingerThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """``gthread`` whose pool threads wait for ready connections on one shared ``epoll``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        #: Connections waiting in the poller, by file descriptor (gthread's handle_request
        #: counts them against ``max_keepalived`` through this name).
        self.keepalived_conns: dict[int, Any] = {}
        self._threads: list[threading.Thread] = []
        self._ready: Any = None
        self._stop_r = self._stop_w = -1

    def init_process(self) -> None:
        # In this worker process only: gthread builds each HTTP/1 response through
        # wsgi.create (HTTP/2 passes its own class, which _create keeps).
        wsgi.create = _create
        gutil.http_date = _http_date
        self._ready = select.epoll()
        self._stop_r, self._stop_w = os.pipe()
        self._ready.register(self._stop_r, select.EPOLLIN)  # level: every thread sees it
        super().init_process()

    def get_thread_pool(self) -> Any:
        return None  # our threads are ours: see run()

    def handle_quit(self, sig: Any, frame: Any) -> None:
        self.alive = False
        self.cfg.worker_int(self)
        time.sleep(0.1)
        raise SystemExit(0)

    # -- the connections' life -------------------------------------------------------------

    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        with self._lock:
            self.nr_conns += 1
        if type(client_sock) is socket.socket:  # not a wrapper (the wire log's WireSocket)
            client_sock = _QuietSocket(
                client_sock.family, client_sock.type, client_sock.proto, client_sock.detach()
            )
        conn = gthread.TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        conn.fd = client_sock.fileno()
        # A new connection may take its time for its first bytes, as in gthread (its data
        # wait, then the keep-alive timeout), but holds no thread meanwhile.
        self._park(conn, max(self.cfg.keepalive, gthread.DEFAULT_WORKER_DATA_TIMEOUT), new=True)

    def _park(self, conn: Any, seconds: float, new: bool = False) -> None:
        """Put ``conn`` in the poller until it is readable or ``seconds`` have passed."""
        conn.timeout = time.monotonic() + seconds
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + gthread.STOP_KEEPALIVE_LINGER)
        with self._lock:
            self.keepalived_conns[conn.fd] = conn
        try:
            try:
                if new:
                    self._ready.register(conn.fd, _ARMED)
                else:
                    self._ready.modify(conn.fd, _ARMED)  # one epoll_ctl: armed again
            except FileExistsError:
                self._ready.modify(conn.fd, _ARMED)
            except FileNotFoundError:
                self._ready.register(conn.fd, _ARMED)
        except (OSError, ValueError):  # the poller is closed: the worker is stopping
            with self._lock:
                self.keepalived_conns.pop(conn.fd, None)
            self._close(conn)

    def _close(self, conn: Any, graceful: bool = False) -> None:
        with self._lock:
            self.nr_conns -= 1
        with contextlib.suppress(OSError, ValueError):
            self._ready.unregister(conn.fd)  # unless never registered, or the poller is closed
        with contextlib.suppress(OSError):
            conn.close(graceful=graceful)

    def _serve(self, conn: Any) -> None:
        """Answer what ``conn`` sent (in a pool thread), then park or close it."""
        try:
            while True:
                result = self.handle(conn)
                if result is gthread._DEFER:
                    self._park(conn, self.cfg.keepalive)
                    return
                if not result:
                    self._close(conn, graceful=True)
                    return
                if not _buffered(conn):
                    break
        except Exception:
            self._close(conn)
            return
        self._park(conn, self.cfg.keepalive)

    def _keepalive_after(self, conn: Any, keepalive: Any) -> bool:
        if keepalive and _body_read_to_its_end(conn.parser.mesg):
            conn.parser.mesg = None  # nothing to drain before the next request
            return True
        return bool(super()._keepalive_after(conn, keepalive))

    def _follow(self) -> None:
        """A pool thread: wait for one ready connection, answer it, again, until stopped."""
        while True:
            try:
                events = self._ready.poll(-1, 1)
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return  # the poller is closed
            for fd, _ in events:
                if fd == self._stop_r:
                    return
                with self._lock:
                    conn = self.keepalived_conns.pop(fd, None)
                if conn is not None:  # else: timed out and closed meanwhile
                    self._serve(conn)

    def _expire(self, force: bool = False) -> None:
        """Close the connections that waited past their timeout (all of them with ``force``)."""
        now = time.monotonic()
        with self._lock:
            done = [c for c in self.keepalived_conns.values() if force or c.timeout <= now]
            for conn in done:
                del self.keepalived_conns[conn.fd]
        for conn in done:
            self._close(conn)

    # -- the main thread -------------------------------------------------------------------

    def run(self) -> None:
        self.poller.register(
            self.method_queue.fileno(),
            gthread.selectors.EVENT_READ,
            self.method_queue.run_callbacks,
        )
        for number in range(self.cfg.threads):
            thread = threading.Thread(target=self._follow, name=f"linger-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.set_accept_enabled(True)
        while self.alive:
            self.notify()
            can_accept = self.nr_conns < self.worker_connections
            if can_accept != self._accepting:
                self.set_accept_enabled(can_accept)
            self.wait_for_and_dispatch_events(timeout=_TICK)
            if not self.is_parent_alive():
                break
            self._expire()

        # Stopping: no new connections; idle ones closed within STOP_KEEPALIVE_LINGER (a
        # request arriving meanwhile is answered with "Connection: close"); requests in
        # flight get the graceful timeout.
        self.set_accept_enabled(False)
        cap = time.monotonic() + gthread.STOP_KEEPALIVE_LINGER
        with self._lock:
            for conn in self.keepalived_conns.values():
                conn.timeout = min(conn.timeout, cap)
        graceful = time.monotonic() + self.cfg.graceful_timeout
        while self.nr_conns > 0 and time.monotonic() < graceful:
            self.notify()
            self.wait_for_and_dispatch_events(timeout=0.1)
            self._expire()
        self._expire(force=True)
        os.write(self._stop_w, b"x")
        for thread in self._threads:
            thread.join(max(0.0, graceful - time.monotonic()) + 0.1)
        self._ready.close()
        self.poller.close()
        self.method_queue.close()
        for sock in self.sockets:
            sock.close()
