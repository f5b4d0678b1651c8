"""HTTP/1.1 (RFC 9112) for RPC: POST a document to ``/`` or ``/RPC2``, get the answer back.

Both the XML-RPC and the JSON-RPC lab servers run here, on the project's one connection server
(:class:`wirelab.net.server.ConnectionServer`: a cap, an idle timeout, one task per
connection), so clients are served concurrently and keep-alive works. The stdlib's
``SimpleXMLRPCServer`` serves one connection at a time: a client that sends half a body and
stalls freezes it for everyone. Here:

* :mod:`wirelab.rpc._httpcore` parses requests, strictly (the request-smuggling shapes of
  RFC 9112 get a 400; a Transfer-Encoding gets a 411: RPC clients send a Content-Length);
* once a request's first byte arrives, the whole request (head and body) must arrive within
  ``request_timeout`` seconds: else a 408 and close, and the others are never held up;
* a body over ``max_body`` bytes is a 413 before it is read; compressed bodies are refused
  (415): no gzip bombs;
* only POST (else 405) to the RPC paths (else 404), as the stdlib's handler;
* the dispatch runs on the event loop: every function is bounded by the body's size.

The answers carry the stdlib server's headers (``Content-Type`` and ``Content-Length``), so
the book's clients read them as they read the book's servers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from wirelab.net.addresses import listen_tcp
from wirelab.net.server import ConnectionServer, peer_name
from wirelab.rpc._httpcore import (
    CONTINUE,
    NEED_DATA,
    Head,
    HTTPError,
    Request,
    RequestParser,
    encode_response,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "RPCHTTPLimits",
    "open_rpc_http_server",
    "serve_rpc_http_on",
    "use_uvloop",
]

log = logging.getLogger(__name__)

#: Largest request body accepted: 1 MiB (the largest answer to it is of the same order).
DEFAULT_MAX_BODY = 1 << 20

#: Paths served, as the stdlib's ``SimpleXMLRPCRequestHandler.rpc_paths``.
RPC_PATHS = (b"/", b"/RPC2")

SERVER_NAME = b"wirelab-rpc/1.0"

#: A refused client's last bytes are dropped for this long, and this many at most.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20

#: More than a stream ever buffers: the first read takes all it holds.
_TAKE_ALL = 1 << 22

#: Turns a request body into the answer body (``None``: nothing to say: an empty 200, as
#: jsonrpclib's server answers a notification).
Dispatch = Callable[[bytes], bytes | None]


@dataclass(frozen=True)
class RPCHTTPLimits:
    """The bounds of the RPC HTTP server.

    Attributes:
        max_body: largest request body, bytes.
        max_head: largest request head (request line and header fields), bytes.
        request_timeout: seconds a whole request may take to arrive once it has started.
        idle_timeout: seconds a keep-alive connection may wait between requests.
        max_connections: connections served at once.
        max_requests: requests served on one connection before it is closed.
    """

    max_body: int = DEFAULT_MAX_BODY
    max_head: int = 16 << 10
    request_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_connections: int = 1024
    max_requests: int = 10_000


class _Handler:
    """Serves one connection: waits for its first bytes as a stream, then hands the transport
    to an :class:`_RPCProtocol` (see its docstring for why)."""

    def __init__(
        self, dispatch: Dispatch, content_type: bytes, limits: RPCHTTPLimits, name: str
    ) -> None:
        self.dispatch = dispatch
        self.content_type = content_type
        self.limits = limits
        self.name = name

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The first bytes: until they come, the connection server's idle timeout rules. The
        # stream's buffer is bounded (2 x 64 KiB), so one read takes everything it holds.
        first = await reader.read(_TAKE_ALL)
        if not first:
            return
        transport = writer.transport
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        protocol = _RPCProtocol(self, transport, done, peer_name(writer))
        transport.set_protocol(protocol)
        protocol.data_received(first)
        # Until the protocol is done. A cancellation (idle, evicted, the server closing) ends
        # this task, and the connection server closes the transport.
        await done

    def check(self, head: Head | Request) -> tuple[int, str] | None:
        """Why the request cannot be served (status, text), from its head alone, or None."""
        if head.method != b"POST":
            return 405, f"method {head.method.decode('ascii', 'replace')} not allowed: POST"
        path = head.target.split(b"?", 1)[0]
        if path not in RPC_PATHS:
            return 404, "no RPC here: use / or /RPC2"
        if head.headers.get(b"content-encoding", b"identity").lower() != b"identity":
            return 415, "compressed request bodies are not accepted"
        return None


class _RPCProtocol(asyncio.Protocol):
    """The requests of one connection, served as they arrive.

    A stream handler pays for a future and a task switch on every read, as much CPU as the
    XML-RPC call it carries (decision 0182): here the loop calls :meth:`data_received`, the
    parser finds whole requests, and each answer is written at once, in one ``send``. The
    connection stays the connection server's (its cap, its idle timeout: every answer written
    is activity it sees, its closing): the handler's task waits on ``done`` meanwhile.

    * A request that has started must be whole within ``request_timeout`` (one timer, armed
      only while a request is partial): else a 408.
    * A head with ``Expect: 100-continue`` is checked on its own: refused at once (405, 404,
      415; a body over the limit was already a 413 in the parser), else ``100 Continue``.
    * Backpressure: while our answers are not taken (``pause_writing``) we read no more.
    * A refusal is the last word: sent, then end-of-file, then whatever the client still sends
      is dropped (at most ``_LINGER_BYTES`` for ``_LINGER_SECONDS``), so that a reset does not
      destroy the answer before the client reads it.
    """

    def __init__(
        self,
        handler: _Handler,
        transport: asyncio.BaseTransport,
        done: asyncio.Future[None],
        peer: str,
    ) -> None:
        self.handler = handler
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.inner = transport.get_protocol()  # the stream protocol, told when it closes
        self.done = done
        self.peer = peer
        limits = handler.limits
        self.parser = RequestParser(max_body=limits.max_body, max_head=limits.max_head)
        self.served = 0
        self.paused = False
        self.ending = False
        self.continued: Head | None = None  # the head a 100 Continue was sent for
        self.timer: asyncio.TimerHandle | None = None
        self.dropped = 0

    def data_received(self, data: bytes) -> None:
        if self.ending:
            self.dropped += len(data)
            if self.dropped > _LINGER_BYTES:
                self._close()
            return
        self.parser.receive_data(data)
        self._serve()

    def _serve(self) -> None:
        handler = self.handler
        parser = self.parser
        while not self.paused and not self.ending:
            try:
                request = parser.next_request()
            except HTTPError as exc:
                self._last_word(exc.status, exc.message)
                return
            if request is NEED_DATA:
                self._partial()
                return
            assert isinstance(request, Request)
            self.continued = None  # the next request's head is judged anew (it may be this one)
            problem = handler.check(request)
            if problem is not None:
                self._last_word(*problem)
                return
            self.served += 1
            answer = handler.dispatch(request.body)
            close = self.served >= handler.limits.max_requests or not request.keep_alive
            self.transport.write(
                encode_response(
                    200, answer or b"", handler.content_type, server=SERVER_NAME, close=close
                )
            )
            if close:
                self.ending = True
                self._close()
                return
        if self.timer is not None and not parser.started:
            self.timer.cancel()
            self.timer = None

    def _partial(self) -> None:
        """A request has begun (or not): arm its deadline, answer an ``Expect``."""
        parser = self.parser
        if not parser.started:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            return
        if self.timer is None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.handler.limits.request_timeout, self._timed_out)
        head = parser.head
        if head is not None and head.expects_continue and head is not self.continued:
            self.continued = head
            problem = self.handler.check(head)
            if problem is not None:
                self._last_word(*problem)
            else:
                self.transport.write(CONTINUE)

    def _timed_out(self) -> None:
        self.timer = None
        if not self.ending:
            log.info(
                "%s: %s sent a partial request for %g s: 408",
                self.handler.name,
                self.peer,
                self.handler.limits.request_timeout,
            )
            self._last_word(408, "the request did not arrive in time")

    def _last_word(self, status: int, text: str) -> None:
        self.ending = True
        if self.timer is not None:
            self.timer.cancel()
        self.transport.write(_problem(status, text))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(_LINGER_SECONDS, self._close)

    def _close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.close()

    def eof_received(self) -> bool:
        return False  # the client is done: close (mid-request, there is nobody to tell)

    def pause_writing(self) -> None:
        self.paused = True
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if not self.ending:
            self.transport.resume_reading()
            self._serve()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.inner.connection_lost(exc)  # the stream's writer.wait_closed() returns
        if not self.done.done():
            self.done.set_result(None)


def _problem(status: int, text: str) -> bytes:
    return encode_response(
        status, (text + "\n").encode(), b"text/plain; charset=utf-8", server=SERVER_NAME, close=True
    )


async def open_rpc_http_server(
    dispatch: Dispatch,
    host: str | None,
    port: int | str,
    *,
    name: str,
    content_type: bytes,
    limits: RPCHTTPLimits | None = None,
) -> ConnectionServer:
    """Serve ``dispatch`` over HTTP/1.1 at ``host``:``port``.

    Raises:
        ConnectError: the address cannot be bound.
    """
    server = _connection_server(dispatch, name, content_type, limits)
    await server.start(listen_tcp(host, port))
    return server


async def serve_rpc_http_on(
    dispatch: Dispatch,
    sock: socket.socket,
    *,
    name: str,
    content_type: bytes,
    limits: RPCHTTPLimits | None = None,
) -> ConnectionServer:
    """Serve ``dispatch`` over HTTP/1.1 on ``sock``, a listening socket this server now owns
    (a worker process of :mod:`wirelab.rpc.workers` serves the one its parent bound)."""
    server = _connection_server(dispatch, name, content_type, limits)
    await server.start(sock)
    return server


def _connection_server(
    dispatch: Dispatch, name: str, content_type: bytes, limits: RPCHTTPLimits | None
) -> ConnectionServer:
    limits = limits or RPCHTTPLimits()
    return ConnectionServer(
        _Handler(dispatch, content_type, limits, name),
        name=name,
        max_connections=limits.max_connections,
        idle_timeout=limits.idle_timeout,
        evict_idlest=True,
    )


def use_uvloop() -> bool:
    """Make ``asyncio.run`` use uvloop in this process (``wirelab rpc serve``, the benchmark).

    uvloop's transports cost about half of asyncio's per request (decision 0182). The lab's
    event loop is shared by every chapter and is left as it is. Returns False (and changes
    nothing) when uvloop is not installed.
    """
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
