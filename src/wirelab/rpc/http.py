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
import time
from collections.abc import Callable
from dataclasses import dataclass

from wirelab.net.server import ConnectionServer, peer_name
from wirelab.rpc._httpcore import NEED_DATA, HTTPError, Request, RequestParser, encode_response

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


class _Handler:
    def __init__(
        self, dispatch: Dispatch, content_type: bytes, limits: RPCHTTPLimits, name: str
    ) -> None:
        self.dispatch = dispatch
        self.content_type = content_type
        self.limits = limits
        self.name = name

    def _answer(self, status: int, body: bytes, close: bool) -> bytes:
        return encode_response(status, body, self.content_type, server=SERVER_NAME, close=close)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self.limits
        parser = RequestParser(max_body=limits.max_body, max_head=limits.max_head)
        served = 0
        deadline: float | None = None  # set when a request starts arriving
        while True:
            try:
                request = parser.next_request()
            except HTTPError as exc:
                writer.write(_problem(exc.status, exc.message))
                await writer.drain()
                return
            if request is NEED_DATA:
                if deadline is None and parser.started:
                    deadline = time.monotonic() + limits.request_timeout
                try:
                    if deadline is None:
                        data = await reader.read(65536)  # idle: the connection server's timeout
                    else:
                        async with asyncio.timeout(deadline - time.monotonic()):
                            data = await reader.read(65536)
                except TimeoutError:
                    log.info(
                        "%s: %s sent a partial request for %g s: 408",
                        self.name,
                        peer_name(writer),
                        limits.request_timeout,
                    )
                    writer.write(_problem(408, "the request did not arrive in time"))
                    await writer.drain()
                    return
                if not data:
                    return  # the client closed (mid-request: nobody to tell)
                parser.receive_data(data)
                continue
            assert isinstance(request, Request)
            problem = self._check(request)
            if problem is not None:
                writer.write(_problem(*problem))
                await writer.drain()
                return
            served += 1
            answer = self.dispatch(request.body)
            close = served >= limits.max_requests or not request.keep_alive
            writer.write(self._answer(200, answer or b"", close))
            await writer.drain()
            if close:
                return
            deadline = None

    def _check(self, request: Request) -> tuple[int, str] | None:
        if request.method != b"POST":
            return 405, f"method {request.method.decode('ascii', 'replace')} not allowed: POST"
        path = request.target.split(b"?", 1)[0]
        if path not in RPC_PATHS:
            return 404, "no RPC here: use / or /RPC2"
        if request.headers.get(b"content-encoding", b"identity").lower() != b"identity":
            return 415, "compressed request bodies are not accepted"
        return None


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
