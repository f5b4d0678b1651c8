"""gunicorn's ``gthread`` worker with a keep-alive fast path: ``http serve``'s default worker.

Stock ``gthread`` answers each request on a kept-alive connection with two hand-offs between
threads: the worker's main thread sees the socket readable, hands the connection to a pool
thread, which parses and answers it, then hands it back (a pipe write) so the main thread can
put it in its poller again. On one connection that is two thread wake-ups, two ``epoll_ctl``
calls and a GIL hand-over (about twenty ``futex`` calls) per request, and it made ``gthread``
answer 0.6 of waitress's requests per second (decision 0091, ``bench/http_bench.py``).

:class:`LingerThreadWorker` keeps the answering thread on the connection for ``LINGER``
seconds after a kept-alive response, **only while no other connection waits for a thread**
(the pool's queue is empty): if the client's next request arrives in that time (a client
reusing its connection usually sends it within a fraction of a millisecond), the same thread
answers it with no hand-off; if not, or once others wait, the connection goes back to the
main thread's poller exactly as in ``gthread``. Everything else (the parser, the limits,
keep-alive caps, graceful stop, TLS) is gunicorn's own.

It also sends each response's head with the first piece of its body, in one ``sendall``
(:class:`CoalescingResponse`): gunicorn writes them with two, and every blocking call lets
go of the GIL, which the other threads then fight over under load; one write is one system
call and one hand-over fewer per response. A body that streams still leaves piece by piece
as the application yields it; only the head waits, for the first piece or the end.

Loaded by gunicorn as ``--worker-class wirelab.http.worker.LingerThreadWorker``.
"""

from __future__ import annotations

import select
import ssl
from typing import Any

from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

__all__ = ["LINGER", "CoalescingResponse", "LingerThreadWorker"]

#: Seconds a pool thread waits for the next request on its kept-alive connection.
LINGER = 0.002


def _next_request_ready(conn: Any, timeout: float) -> bool:
    """True when the connection has bytes of a next request (buffered, or within ``timeout``)."""
    if conn.parser.unreader.buf.getvalue():
        return True  # pipelined: gunicorn read part of it already
    sock = conn.sock
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(timeout * 1000.0))


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


class LingerThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """``gthread``, whose pool thread keeps a kept-alive connection for :data:`LINGER` s."""

    linger = LINGER

    def init_process(self) -> None:
        # In this worker process only: gthread builds each HTTP/1 response through
        # wsgi.create (HTTP/2 passes its own class, which _create keeps).
        wsgi.create = _create
        super().init_process()

    def _nobody_waits(self) -> bool:
        queue = getattr(self.tpool, "_work_queue", None)
        return queue is not None and bool(queue.empty())

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        # True: the response kept the connection alive (gthread would hand it back now).
        while (
            result is True
            and self.alive
            and not conn.is_http2
            and self._nobody_waits()
            and _next_request_ready(conn, self.linger)
        ):
            result = super().handle(conn)
        return result
