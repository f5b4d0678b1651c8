"""A buffering reverse proxy in front of gunicorn: what nginx does in chapter 10's deployment.

gunicorn's workers give each connection a thread (``gthread``) or the whole process
(``sync``) while they read its request, so a few hundred clients that trickle their headers,
or hold a few random bytes, take every thread and nobody else is served. The cure the
chapter names is a reverse proxy that reads each request completely, cheaply, before the
Python server sees it. :func:`open_front` is that proxy, on
:class:`~wirelab.net.server.ConnectionServer` (a cap, an idle timeout, TLS):

* h11 parses the request; its head must be complete within ``head_timeout`` seconds
  (``408`` otherwise) and under ``max_head`` bytes (``431``); the body, framed by
  Content-Length or chunked and never both (``400``; h11 refuses other bad framing), is read
  whole within ``body_timeout``, up to ``max_body`` (``413``), and within ``body_budget`` for
  the bodies of all clients together (``503`` past it, for a body over 64 KiB);
* the request is then **re-written** for the backend: request line, the client's headers
  minus the hop-by-hop ones and any ``X-Forwarded-*``/``Forwarded`` the client sent (its
  ``Connection`` is passed on, since httpbin echoes it), our own ``X-Forwarded-For`` and
  ``X-Forwarded-Proto``, and the body with a Content-Length. Nothing the client framed
  reaches gunicorn as the client framed it, so nothing can be smuggled;
* the backend's response is **buffered**, as nginx's ``proxy_buffering`` does: read from
  gunicorn as fast as gunicorn writes it, held in memory, and written to the client at the
  client's pace, while it arrives (streams stay streams). The backend connection is closed
  the moment the response has ended, so a client that reads slowly costs memory here, not
  one of gunicorn's threads. Bounded: ``response_buffer`` bytes per response (8 MiB) and
  ``buffer_budget`` for all of them (64 MiB; past it each keeps
  :data:`MIN_RESPONSE_BUFFER`); a response past its bound goes at the client's pace, the
  backend waiting, as before. Memory, not a temporary file as nginx spools to: the lab's
  answers are httpbin's (its largest are an echo of a request, itself at most
  ``max_body``), and a spool would put clients' data on disk and block the event loop on
  file writes (decision 0091);
* the status line and headers are gunicorn's (``Server: gunicorn``), framed by h11 for the
  client; the connection is kept alive when the client wants it.

One backend connection per request, closed once h11 has seen the response end: on loopback
it costs a fraction of a millisecond, and a backend that closes a kept-alive connection can
never make us retry a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from dataclasses import dataclass

import h11

from wirelab.net.server import ConnectionServer, last_word, peer_name

__all__ = ["MIN_RESPONSE_BUFFER", "FrontLimits", "FrontStats", "open_front"]

log = logging.getLogger(__name__)

#: Headers that belong to one hop, never forwarded (RFC 9110 section 7.6.1), and the
#: forwarding headers only we may set.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-protocol",
        b"x-forwarded-ssl",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)


@dataclass(frozen=True)
class FrontLimits:
    """The proxy's bounds.

    Attributes:
        max_head: bytes of request line and headers.
        max_body: bytes of request body.
        head_timeout: seconds a request head may take to arrive, from its first byte
            (or, on a kept-alive connection, from the end of the previous response).
        body_timeout: seconds the body may take after the head.
        backend_timeout: seconds the backend may go quiet while answering.
        max_connections: client connections served at once.
        idle_timeout: seconds a connection may move no byte.
        response_buffer: bytes of one response held for a client that reads slower than
            the backend writes; past it, the backend waits for the client (streaming).
        buffer_budget: bytes of responses held for all clients together; past it, each
            response gets :data:`MIN_RESPONSE_BUFFER` bytes, then streams.
        body_budget: bytes of request bodies held for all clients together (each is held
            until it has gone to the backend); past it, a body over
            :data:`MIN_RESPONSE_BUFFER` bytes is refused with ``503``.
    """

    max_head: int = 16 * 1024
    max_body: int = 10 * 1024 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    backend_timeout: float = 60.0
    max_connections: int = 1000
    idle_timeout: float = 30.0
    response_buffer: int = 8 * 1024 * 1024
    buffer_budget: int = 64 * 1024 * 1024
    body_budget: int = 64 * 1024 * 1024


#: Bytes every response may hold even when the budget of all of them is spent.
MIN_RESPONSE_BUFFER = 64 * 1024


@dataclass
class FrontStats:
    """What the front's response buffers hold (one object per front, shared by its clients).

    Attributes:
        buffered: bytes of responses held now.
        peak: the most ever held at once.
        streamed: responses that reached a limit and then went at their client's pace.
        bodies: bytes of request bodies held now.
        refused_bodies: bodies refused because ``body_budget`` was spent.
    """

    buffered: int = 0
    peak: int = 0
    streamed: int = 0
    bodies: int = 0
    refused_bodies: int = 0


class _Held:
    """Bytes of one request body counted in :attr:`FrontStats.bodies` until released."""

    def __init__(self, stats: FrontStats) -> None:
        self.stats = stats
        self.count = 0

    def add(self, count: int) -> None:
        self.count += count
        self.stats.bodies += count

    def release(self) -> None:
        self.stats.bodies -= self.count
        self.count = 0


class _Buffer:
    """One response's bytes on their way from the backend (:meth:`put`, as fast as it sends)
    to the client (:meth:`get`, then :meth:`release` once written), within the limits."""

    def __init__(self, limits: FrontLimits, stats: FrontStats) -> None:
        self.limits = limits
        self.stats = stats
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.done = False
        self.throttled = False
        self.more = asyncio.Event()
        self.room = asyncio.Event()

    def _full(self) -> bool:
        if self.size >= self.limits.response_buffer:
            return True
        over_budget = self.stats.buffered >= self.limits.buffer_budget
        return over_budget and self.size >= MIN_RESPONSE_BUFFER

    async def put(self, data: bytes) -> None:
        """Hold ``data``; wait while this response is at its limit."""
        if not data:
            return
        self.chunks.append(data)
        self.size += len(data)
        self.stats.buffered += len(data)
        self.stats.peak = max(self.stats.peak, self.stats.buffered)
        self.more.set()
        while self._full():
            if not self.throttled:
                self.throttled = True
                self.stats.streamed += 1
            self.room.clear()
            await self.room.wait()

    def finish(self) -> None:
        """No more bytes will come (the response ended, or the backend failed)."""
        self.done = True
        self.more.set()

    async def get(self) -> bytes | None:
        """The next bytes for the client, or ``None`` at the end."""
        while not self.chunks:
            if self.done:
                return None
            self.more.clear()
            await self.more.wait()
        return self.chunks.popleft()

    def release(self, count: int) -> None:
        """``count`` bytes from :meth:`get` have been written to the client."""
        self.size -= count
        self.stats.buffered -= count
        self.room.set()

    def discard(self) -> None:
        """Forget what is still held (the client went away, or it was all sent)."""
        self.stats.buffered -= self.size
        self.size = 0
        self.chunks.clear()
        self.room.set()


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _refusal(status: int, reason: str) -> bytes:
    phrase = {
        400: "Bad Request",
        408: "Request Timeout",
        413: "Content Too Large",
        431: "Request Header Fields Too Large",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }.get(status, "Error")
    body = f"{status} {phrase}: {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class _Front:
    def __init__(
        self, backend: tuple[str, int], scheme: str, limits: FrontLimits, stats: FrontStats
    ) -> None:
        self.backend = backend
        self.scheme = scheme
        self.limits = limits
        self.stats = stats

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head)
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        while True:
            held = _Held(self.stats)  # this request's body, counted in the budget
            try:
                try:
                    request, body = await self._read_request(reader, conn, held)
                except _Refuse as refusal:
                    log.info("www front: %s from %s", refusal.reason, peer_name(writer))
                    await last_word(reader, writer, _refusal(refusal.status, refusal.reason))
                    return
                if request is None:
                    return  # the client closed between requests
                try:
                    await self._forward(request, body, conn, writer, client_ip, held)
                except _Refuse as refusal:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        await last_word(reader, writer, _refusal(refusal.status, refusal.reason))
                    return
            finally:
                held.release()
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(
        self, reader: asyncio.StreamReader, conn: h11.Connection, held: _Held
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self.limits.head_timeout
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint in (400, 431) else 400
                raise _Refuse(status, f"bad request ({exc})") from exc
            if event is h11.NEED_DATA:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    what = "head" if request is None else "body"
                    raise _Refuse(408, f"the request {what} took too long")
                try:
                    async with asyncio.timeout(left):
                        data = await reader.read(65536)
                except TimeoutError:
                    what = "head" if request is None else "body"
                    raise _Refuse(408, f"the request {what} took too long") from None
                except (ConnectionError, ssl.SSLError):
                    return None, b""
                if not data and request is None and not conn.trailing_data[0]:
                    return None, b""
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                names = [name for name, _ in event.headers]
                if b"transfer-encoding" in names and b"content-length" in names:
                    # RFC 9112 section 6.1 lets a server refuse this; a proxy should: it is
                    # the shape of every CL.TE / TE.CL smuggling attack.
                    raise _Refuse(400, "Content-Length and Transfer-Encoding together")
                request = event
                deadline = asyncio.get_running_loop().time() + self.limits.body_timeout
            elif isinstance(event, h11.Data):
                size = len(body) + len(event.data)
                if size > self.limits.max_body:
                    raise _Refuse(413, f"the body is over {self.limits.max_body} bytes")
                if (
                    size > MIN_RESPONSE_BUFFER
                    and self.stats.bodies + len(event.data) > self.limits.body_budget
                ):
                    self.stats.refused_bodies += 1
                    raise _Refuse(503, "the front is holding all the bodies it may; try again")
                body += event.data
                held.add(len(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                if request is None:
                    return None, b""
                raise _Refuse(400, "the client closed in the middle of its request")

    def _backend_request(self, request: h11.Request, body: bytes, client_ip: str) -> bytes:
        lines = [b"%s %s HTTP/1.1" % (request.method, request.target)]
        framed = False
        for name, value in request.headers.raw_items():
            low = name.lower()
            if low in (b"content-length", b"transfer-encoding"):
                framed = True
            if low == b"connection":
                lines.append(name + b": " + value)  # as the client said: httpbin echoes it
                continue
            if low in _HOP:
                continue
            lines.append(name + b": " + value)
        lines.append(b"X-Forwarded-For: " + client_ip.encode("ascii"))
        lines.append(b"X-Forwarded-Proto: " + self.scheme.encode("ascii"))
        if framed or body:
            lines.append(b"Content-Length: %d" % len(body))
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def _forward(
        self,
        request: h11.Request,
        body: bytes,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        client_ip: str,
        held: _Held,
    ) -> None:
        try:
            async with asyncio.timeout(5.0):
                b_reader, b_writer = await asyncio.open_connection(*self.backend)
        except (OSError, TimeoutError) as exc:
            raise _Refuse(502, f"the backend is unreachable ({exc})") from exc
        b_writer.write(self._backend_request(request, body, client_ip))
        buffer = _Buffer(self.limits, self.stats)
        if held.count:
            try:
                async with asyncio.timeout(self.limits.backend_timeout):
                    await b_writer.drain()  # the body is with the kernel now
            except (OSError, TimeoutError) as exc:
                b_writer.close()
                raise _Refuse(502, f"the backend did not take the request ({exc})") from exc
            held.release()
        pump = asyncio.create_task(self._pump(request, conn, b_reader, b_writer, buffer))
        try:
            # The client's pace: gunicorn's is the pump's, so a slow reader costs memory
            # here (bounded), not a thread there.
            while (chunk := await buffer.get()) is not None:
                writer.write(chunk)
                await writer.drain()
                buffer.release(len(chunk))
            await pump  # its _Refuse, if the backend failed
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, _Refuse):
                    await pump
            buffer.discard()

    async def _pump(
        self,
        request: h11.Request,
        conn: h11.Connection,
        b_reader: asyncio.StreamReader,
        b_writer: asyncio.StreamWriter,
        buffer: _Buffer,
    ) -> None:
        """Read the backend's response as fast as it comes, framed for the client, into
        ``buffer``; close the backend connection the moment the response has ended."""
        client = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        try:
            # (h11 needs the request it answers: the method decides the response's framing)
            client.send(
                h11.Request(
                    method=request.method,
                    target=request.target,
                    headers=[("Host", "backend"), ("Connection", "close")],
                )
            )
            client.send(h11.EndOfMessage())
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    try:
                        async with asyncio.timeout(self.limits.backend_timeout):
                            data = await b_reader.read(65536)
                    except (OSError, TimeoutError) as exc:
                        raise _Refuse(502, f"the backend failed ({exc})") from exc
                    client.receive_data(data)
                    continue
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    headers = [
                        (n, v)
                        for n, v in event.headers.raw_items()
                        if n.lower() not in _HOP or n.lower() == b"content-length"
                    ]
                    out = conn.send(
                        h11.Response(
                            status_code=event.status_code, headers=headers, reason=event.reason
                        )
                    )
                elif isinstance(event, h11.Data):
                    out = conn.send(h11.Data(data=event.data))
                elif isinstance(event, h11.EndOfMessage):
                    await buffer.put(conn.send(h11.EndOfMessage()) or b"")
                    return
                else:
                    raise _Refuse(502, "the backend closed without an answer")
                if out:
                    await buffer.put(out)
        except h11.ProtocolError as exc:
            raise _Refuse(502, f"the backend's answer was not valid HTTP ({exc})") from exc
        finally:
            buffer.finish()
            b_writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await b_writer.wait_closed()


async def open_front(
    host: str,
    port: int,
    backend: tuple[str, int],
    *,
    ssl_context: ssl.SSLContext | None = None,
    limits: FrontLimits | None = None,
    name: str = "www front",
    sock_options: tuple[tuple[int, int, int], ...] = (),
    stats: FrontStats | None = None,
) -> ConnectionServer:
    """Serve ``host:port`` (TLS with ``ssl_context``), forwarding whole requests to ``backend``.

    Args:
        sock_options: ``(level, option, value)`` for the listening socket (its accepted
            sockets inherit them).
        stats: filled in as responses are buffered (for tests and reports).
    """
    bounds = limits or FrontLimits()
    scheme = "https" if ssl_context is not None else "http"
    front = _Front(backend, scheme, bounds, stats if stats is not None else FrontStats())
    return await ConnectionServer.open(
        front.handle,
        host,
        port,
        name=name,
        max_connections=bounds.max_connections,
        idle_timeout=bounds.idle_timeout,
        ssl_context=ssl_context,
        sock_options=sock_options,
    )
