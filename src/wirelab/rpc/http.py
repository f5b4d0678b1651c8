"""HTTP/1.1 (RFC 9112) for RPC: POST a document to ``/`` or ``/RPC2``, get the answer back.

Both the XML-RPC and the JSON-RPC lab servers run here, on the project's one connection server
(:class:`wirelab.net.server.ConnectionServer`: a cap, an idle timeout, one task per
connection), so clients are served concurrently and keep-alive works. The stdlib's
``SimpleXMLRPCServer`` serves one connection at a time: a client that sends half a body and
stalls freezes it for everyone. Here:

* h11 parses requests (it refuses the request-smuggling shapes RFC 9112 says get a 400);
* once a request's first byte arrives, the whole request (head and body) must arrive within
  ``request_timeout`` seconds: else a 408 and close, and the others are never held up;
* a body over ``max_body`` bytes is a 413 before it is read (Content-Length), or as soon as it
  passes the limit (chunked); compressed bodies are refused (415): no gzip bombs;
* only POST (else 405) to the RPC paths (else 404), as the stdlib's handler;
* the dispatch runs on the event loop: every function is bounded by the body's size.

The answers carry the stdlib server's headers (``Content-Type`` and ``Content-Length``), so
the book's clients read them as they read the book's servers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import h11

from wirelab.net.server import ConnectionServer, peer_name

__all__ = ["DEFAULT_MAX_BODY", "RPCHTTPLimits", "open_rpc_http_server"]

log = logging.getLogger(__name__)

#: Largest request body accepted: 1 MiB (the largest answer to it is of the same order).
DEFAULT_MAX_BODY = 1 << 20

#: Paths served, as the stdlib's ``SimpleXMLRPCRequestHandler.rpc_paths``.
RPC_PATHS = (b"/", b"/RPC2")

SERVER_NAME = b"wirelab-rpc/1.0"

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


def _response(
    conn: h11.Connection, status: int, body: bytes, content_type: bytes, close: bool = False
) -> bytes:
    headers = [
        (b"Server", SERVER_NAME),
        (b"Content-Type", content_type),
        (b"Content-Length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"Connection", b"close"))
    return (
        conn.send(h11.Response(status_code=status, headers=headers))
        + (conn.send(h11.Data(data=body)) if body else b"")
        + conn.send(h11.EndOfMessage())
    )


def _problem(conn: h11.Connection, status: int, text: str) -> bytes:
    body = (text + "\n").encode()
    try:
        return _response(conn, status, body, b"text/plain; charset=utf-8", close=True)
    except h11.LocalProtocolError:  # h11 cannot answer in this state: just close
        return b""


class _Handler:
    def __init__(
        self, dispatch: Dispatch, content_type: bytes, limits: RPCHTTPLimits, name: str
    ) -> None:
        self.dispatch = dispatch
        self.content_type = content_type
        self.limits = limits
        self.name = name

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self.limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        served = 0
        deadline: float | None = None  # set when a request starts arriving
        body: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                writer.write(_problem(conn, exc.error_status_hint, f"bad request: {exc}"))
                await writer.drain()
                return
            if event is h11.NEED_DATA:
                if deadline is None and (conn.their_state is not h11.IDLE or conn.trailing_data[0]):
                    deadline = time.monotonic() + limits.request_timeout
                try:
                    if deadline is None:
                        data = await reader.read(65536)  # idle: the connection server's timeout
                    else:
                        async with asyncio.timeout(deadline - time.monotonic()):
                            data = await reader.read(65536)
                except TimeoutError:
                    log.info(
                        "%s: %s sent a partial request for %gs: 408",
                        self.name,
                        peer_name(writer),
                        limits.request_timeout,
                    )
                    writer.write(_problem(conn, 408, "the request did not arrive in time"))
                    await writer.drain()
                    return
                if deadline is None and data:
                    deadline = time.monotonic() + limits.request_timeout
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                problem = self._check(event)
                if problem is not None:
                    writer.write(_problem(conn, *problem))
                    await writer.drain()
                    return
                body, size = [], 0
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limits.max_body:
                    writer.write(_problem(conn, 413, "request body too large"))
                    await writer.drain()
                    return
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                served += 1
                answer = self.dispatch(b"".join(body))
                body = []
                close = served >= limits.max_requests
                if answer is None:
                    out = _response(conn, 200, b"", self.content_type, close)
                else:
                    out = _response(conn, 200, answer, self.content_type, close)
                writer.write(out)
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or close:
                    return
                conn.start_next_cycle()
                deadline = None
            else:  # ConnectionClosed, PAUSED
                return

    def _check(self, request: h11.Request) -> tuple[int, str] | None:
        headers = dict(request.headers)
        if request.method != b"POST":
            return 405, f"method {request.method.decode('ascii', 'replace')} not allowed: POST"
        path = request.target.split(b"?", 1)[0]
        if path not in RPC_PATHS:
            return 404, "no RPC here: use / or /RPC2"
        if headers.get(b"content-encoding", b"identity") != b"identity":
            return 415, "compressed request bodies are not accepted"
        length = headers.get(b"content-length")
        if length is not None and int(length) > self.limits.max_body:
            return 413, "request body too large"
        return None


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
    limits = limits or RPCHTTPLimits()
    handler = _Handler(dispatch, content_type, limits, name)
    return await ConnectionServer.open(
        handler,
        host,
        port,
        name=name,
        max_connections=limits.max_connections,
        idle_timeout=limits.idle_timeout,
        evict_idlest=True,
    )
