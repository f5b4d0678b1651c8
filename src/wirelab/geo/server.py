"""The lab geocoder over HTTPS (HTTP/1.1 RFC 9112, TLS 1.2+): h11 parses, we bound everything.

Requests are parsed by h11 (docs/decisions/0033-geocoder-requests-parsed-by-h11.md), which
refuses every request-smuggling shape RFC 9112 says must get a 400: a space before a header
colon, a header line with no colon, two different Content-Length values, a Content-Length that
is not ASCII digits (or has over 20 of them), HTTP/1.1 without Host. Our limits sit on top,
checked on the raw bytes before h11 parses a head:

* the request line (``max_request_line``, else 414), the header block (``max_header_line``,
  ``max_headers``, ``max_header_bytes``, else 431), request bodies (a GET may carry at most
  ``max_body`` bytes, else 413; any Transfer-Encoding in a request is a 400), methods (GET
  and HEAD, else 405) and the requests served per connection (``max_requests``);
* time: a whole request head (and its small body) must arrive within ``head_timeout`` of the
  moment the server starts waiting for it (as nginx's ``client_header_timeout``), however
  steadily its bytes trickle in; then a 408 and close, or a silent close for a connection
  that sent nothing (idle keep-alive). Each write has ``io_timeout``;
* every error is a JSON document in our own words, sent with ``Connection: close``, and the
  connection is closed. Each is logged on one line, with any ``key=`` redacted.

:class:`Exchange` is the sans-I/O conversation (bytes in, bytes out, never an exception).
The connections are the project's one connection server
(:class:`wirelab.net.server.ConnectionServer`): TLS with a ``handshake_timeout``, at most
``max_connections`` at once, an idle timeout (``io_timeout``: a client that stops reading
our answer), and ``evict_idlest``: when all are taken, the connection quiet for longest is
closed and the new one served, so a slowloris holds a slot for at most ``head_timeout`` and
never keeps a normal client out. Lookups run on the event loop: one takes 2 ms at most.

Successful ``/search`` answers to HTTP/1.1 clients are sent with chunked transfer encoding,
as Nominatim's own servers do, so clients meet both body framings.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, fields

import h11

from wirelab.errors import ConfigError
from wirelab.geo.api import ApiResponse, handle
from wirelab.geo.gazetteer import Gazetteer
from wirelab.net.server import ConnectionServer, ServerThread, peer_name

__all__ = ["Exchange", "GeoServer", "HTTPLimits", "open_geo_server"]

log = logging.getLogger(__name__)

_BLANK_LINE = re.compile(rb"\n\r?\n")
_KEY = re.compile(rb"([?&]key=)[^&\s]*", re.I)

SERVER_NAME = b"wirelab-geo/1.0"

#: Bytes asked of the connection per read.
_RECV = 16 << 10


@dataclass(frozen=True)
class HTTPLimits:
    """Every bound of the geocoder's HTTP server, with its default.

    Raises:
        ConfigError: a limit or a timeout that is not above zero.
    """

    max_connections: int = 64
    handshake_timeout: float = 5.0
    head_timeout: float = 10.0
    io_timeout: float = 10.0
    max_request_line: int = 16 << 10
    max_header_line: int = 8 << 10
    max_headers: int = 64
    max_header_bytes: int = 32 << 10
    max_body: int = 1 << 10
    max_requests: int = 100
    chunk_size: int = 512

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not value > 0 or value != value or value == float("inf"):
                raise ConfigError(f"geocoder limit {item.name} must be a number above zero")


def _redacted(data: bytes) -> str:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")[:200]
    return _KEY.sub(rb"\1<redacted>", line).decode("latin-1")


def _h11_reason(exc: h11.RemoteProtocolError, head: bytes) -> str:
    """h11's reason in our words: without the raw bytes it quotes."""
    text = str(exc).split(": bytearray(", 1)[0].split(": b'", 1)[0][:120]
    if text.startswith("illegal request line"):
        line = head.lstrip(b"\r\n").split(b"\n", 1)[0]
        if any(byte > 0x7F for byte in line):
            return "the request line is not ASCII (percent-encode the target as UTF-8)"
        return "malformed request line (expected: METHOD /target HTTP/1.1)"
    if text.startswith("illegal header line"):
        return "malformed header line (a field name, a colon, a value; no space before the colon)"
    return text or "malformed request"


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Exchange:
    """One connection's HTTP/1.1 conversation, sans-I/O: bytes in, bytes to send out.

    Feed what the client sent to :meth:`receive` (``b""`` at end of file) and send what it
    returns; once :attr:`closing` is true, send that last reply and close. Nothing the client
    sends makes it raise.

    Args:
        limits: the bounds to enforce.
        answer: turns a request target into an answer (the web API).
    """

    def __init__(self, limits: HTTPLimits, answer: Callable[[bytes], ApiResponse]) -> None:
        self.limits = limits
        self.answer = answer
        # h11's own bound on a head sits above ours, so ours (414/431) speak first.
        self._h11 = h11.Connection(
            h11.SERVER,
            max_incomplete_event_size=limits.max_request_line + limits.max_header_bytes + 64,
        )
        self._request: h11.Request | None = None
        self._head = b""
        self._eof = False
        #: No more requests: send the last reply, then close.
        self.closing = False
        #: Requests answered (errors included).
        self.served = 0
        #: Errors answered and not yet logged: ``(status, message, request line)``.
        self.errors: list[tuple[int, str, str]] = []

    @property
    def in_head(self) -> bool:
        """True when part of a request has arrived (a 408 is owed if time runs out)."""
        return self._h11.their_state is not h11.IDLE or bool(self._h11.trailing_data[0])

    def receive(self, data: bytes) -> bytes:
        """Take ``data`` from the client (``b""``: it closed); return the bytes to send."""
        if self.closing:
            return b""
        try:
            return self._receive(data)
        except (h11.LocalProtocolError, ValueError, UnicodeError) as exc:  # a bug of ours
            log.warning("geocoder: unexpected request state (%s); closing", exc)
            return self._refuse(500, "the server could not answer this request")

    def resume(self) -> bytes:
        """Answer the next request already received (pipelined), if it is whole; else ``b""``.

        :meth:`receive` answers one request per call, so that a server can let others run
        between the answers to a burst of pipelined requests.
        """
        if self.closing:
            return b""
        try:
            return self._process()
        except (h11.LocalProtocolError, ValueError, UnicodeError) as exc:  # a bug of ours
            log.warning("geocoder: unexpected request state (%s); closing", exc)
            return self._refuse(500, "the server could not answer this request")

    @property
    def buffered(self) -> bool:
        """True when bytes of a further request wait (call :meth:`resume`)."""
        return not self.closing and bool(self._h11.trailing_data[0])

    def timed_out(self) -> bytes:
        """The head did not arrive in time: a 408 if one had started, else nothing."""
        if self.closing:
            return b""
        if not self.in_head:
            self.closing = True
            return b""
        return self._refuse(
            408, f"the request did not arrive within {self.limits.head_timeout:g} s"
        )

    def _receive(self, data: bytes) -> bytes:
        conn = self._h11
        if not data:
            self._eof = True
        elif conn.their_state is h11.IDLE and not conn.trailing_data[0]:
            data = data.lstrip(b"\r\n")  # RFC 9112 section 2.2: blank lines before a request
            if not data:
                return b""
        conn.receive_data(data)
        return self._process()

    def _process(self) -> bytes:
        """Parse what h11 holds, up to one answer."""
        conn = self._h11
        if conn.their_state is h11.IDLE:  # the start of this head, for messages and the log
            self._head = conn.trailing_data[0][: self.limits.max_request_line + 2]
        out: list[bytes] = []
        while not self.closing:
            if conn.their_state is h11.IDLE:  # our limits on the raw head, before h11 parses it
                problem = self._check_head(conn.trailing_data[0])
                if problem is not None:
                    out.append(self._refuse(*problem))
                    break
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof:  # the client closed mid-request: nobody to tell
                    self.closing = True
                    break
                out.append(self._refuse(exc.error_status_hint, _h11_reason(exc, self._head)))
                break
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                self.closing = True
                break
            if isinstance(event, h11.Request):
                problem = self._check_request(event)
                if problem is not None:
                    out.append(self._refuse(*problem, request=event))
                    break
                self._request = event
            elif isinstance(event, h11.EndOfMessage):
                out.append(self._respond())
                break  # one answer per call: resume() for a pipelined next one
            # h11.Data: a small GET body (at most max_body bytes), read and dropped.
        return b"".join(out)

    # -- our limits, on top of h11 ------------------------------------------------------------

    def _check_head(self, buffered: bytes) -> tuple[int, str] | None:
        """Our limits on the head at the start of ``buffered`` (whole or still arriving)."""
        limits = self.limits
        blank = _BLANK_LINE.search(buffered)
        head = buffered if blank is None else buffered[: blank.start()]
        end = head.find(b"\n")
        first = head if end < 0 else head[:end]
        if len(first) > limits.max_request_line:
            return 414, "request line too long"
        if end < 0:
            return None
        rest = head[end + 1 :]
        if len(rest) > limits.max_header_bytes:
            return 431, "request header fields too large"
        lines = rest.split(b"\n")
        if any(len(line) > limits.max_header_line for line in lines):
            return 431, "request header fields too large"
        if len(lines) > limits.max_headers:
            return 431, "too many request header fields"
        return None

    def _check_request(self, request: h11.Request) -> tuple[int, str] | None:
        """Our rules on a whole head, as h11 parsed it (its sizes were checked before)."""
        limits = self.limits
        if request.method not in (b"GET", b"HEAD"):
            return 405, f"method {request.method.decode('ascii', 'replace')} is not allowed"
        headers = {name: value for name, value in request.headers}
        if b"transfer-encoding" in headers:
            return 400, "request bodies with Transfer-Encoding are not accepted"
        length = headers.get(b"content-length", b"0")  # h11 checked it: 1 to 20 ASCII digits
        if int(length) > limits.max_body:
            return 413, "request body too large"
        return None

    # -- answers ------------------------------------------------------------------------------

    def _respond(self) -> bytes:
        request = self._request
        assert request is not None
        self._request = None
        self.served += 1
        head = request.method == b"HEAD"
        answer = self.answer(request.target)
        if answer.status >= 400:
            message = "error"
            with contextlib.suppress(ValueError, LookupError, TypeError):
                message = str(json.loads(answer.body)["error"]["message"])
            self._note(answer.status, message, request.method + b" " + request.target)
        close = self.served >= self.limits.max_requests
        chunked = answer.streamable and request.http_version == b"1.1" and not head
        headers = self._headers(answer.content_type)
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        else:
            headers.append((b"Content-Length", str(len(answer.body)).encode()))
        if close:
            headers.append((b"Connection", b"close"))
        conn = self._h11
        response = h11.Response(
            status_code=answer.status, headers=headers, reason=_phrase(answer.status)
        )
        out = [conn.send(response) or b""]
        if not head:
            size = self.limits.chunk_size if chunked else max(len(answer.body), 1)
            for start in range(0, len(answer.body), size):
                out.append(conn.send(h11.Data(data=answer.body[start : start + size])) or b"")
        out.append(conn.send(h11.EndOfMessage()) or b"")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE and not close:
            conn.start_next_cycle()
        else:
            self.closing = True
        return b"".join(out)  # one write: no Nagle stall between head and body

    def _note(self, status: int, message: str, line: bytes) -> None:
        if len(self.errors) < 8:
            self.errors.append((status, message, _redacted(line)))

    def _headers(self, content_type: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"Server", SERVER_NAME),
            (b"Date", email.utils.formatdate(usegmt=True).encode()),
            (b"Content-Type", content_type.encode()),
            (b"Cache-Control", b"no-store"),
        ]

    def _refuse(self, status: int, message: str, *, request: h11.Request | None = None) -> bytes:
        """An error answer, written by hand (h11 may be in its error state), then close."""
        self.closing = True
        self.served += 1
        if request is not None:
            line = request.method + b" " + request.target
        else:
            line = self._head.split(b"\n", 1)[0]
        self._note(status, message, line)
        reason = _phrase(status)
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        lines = [f"HTTP/1.1 {status} {reason}".encode()]
        lines += [b"%s: %s" % pair for pair in self._headers("application/json; charset=utf-8")]
        lines += [b"Content-Length: %d" % len(body), b"Connection: close", b"", b""]
        if request is not None and request.method == b"HEAD":
            body = b""
        return b"\r\n".join(lines) + body


async def open_geo_server(
    host: str,
    port: int,
    context: ssl.SSLContext,
    gazetteer: Gazetteer,
    limits: HTTPLimits | None = None,
) -> ConnectionServer:
    """Bind ``host:port`` and serve the geocoder over TLS on the running event loop.

    Raises:
        ConnectError: the address cannot be bound.
    """
    limits = limits or HTTPLimits()
    return await ConnectionServer.open(
        _Handler(limits, gazetteer),
        host,
        port,
        name="geo",
        # asyncio sets TCP_NODELAY only on sockets made with proto=IPPROTO_TCP, and ours are
        # made with 0: without it, Nagle's algorithm holds the TLS close_notify after an
        # answer until the client's delayed ACK, 40 ms per connection. Accepted sockets
        # inherit it from the listening one.
        sock_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        max_connections=limits.max_connections,
        idle_timeout=limits.io_timeout,
        ssl_context=context,
        handshake_timeout=limits.handshake_timeout,
        evict_idlest=True,
    )


class _Handler:
    """One connection: bytes from the client into an :class:`Exchange`, its answers back."""

    def __init__(self, limits: HTTPLimits, gazetteer: Gazetteer) -> None:
        self.limits = limits
        self.gazetteer = gazetteer

    def _answer(self, target: bytes) -> ApiResponse:
        # On the event loop: a lookup takes 2 ms at most (a 50-place "Springfield").
        return handle(target, self.gazetteer)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self.limits
        peer = peer_name(writer)
        exchange = Exchange(limits, self._answer)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.head_timeout
        while not exchange.closing:
            try:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(_RECV)
            except TimeoutError:
                late = exchange.timed_out()
                if late:
                    log.info("%s: no whole request within %g s: 408", peer, limits.head_timeout)
                    await self._send(writer, late, peer)
                else:
                    log.debug("%s: idle for %g s; closed", peer, limits.head_timeout)
                return
            before = exchange.served
            out = exchange.receive(data)
            while True:
                for status, message, line in exchange.errors:
                    level = logging.DEBUG if status == 404 else logging.INFO
                    log.log(level, "%s %r: %d %s", peer, line, status, message)
                exchange.errors.clear()
                if out and not await self._send(writer, out, peer):
                    return
                if exchange.served != before:  # a new head's deadline starts now
                    deadline = loop.time() + limits.head_timeout
                    before = exchange.served
                if not exchange.buffered:
                    break
                await asyncio.sleep(0)  # others run between the answers to a pipelined burst
                out = exchange.resume()
                if not out:
                    break
            if not data:
                return

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, peer: str) -> bool:
        """Send an answer; False if the client took none of it for ``io_timeout`` seconds."""
        writer.write(data)  # one write per answer: no Nagle stall between head and body
        try:
            async with asyncio.timeout(self.limits.io_timeout):
                await writer.drain()
        except TimeoutError:
            log.info("%s: took no answer for %g s; closed", peer, self.limits.io_timeout)
            return False
        return True


class GeoServer:
    """The geocoder on ``host:port`` over TLS, on its own event loop in a thread, until stopped.

    For blocking programs and tests; the lab's service runs :func:`open_geo_server` on the
    lab's loop instead.

    Args:
        host: address to bind (loopback in the lab).
        port: port to bind (0: any free port).
        context: the server TLS context (a lab-CA certificate).
        gazetteer: the place index to answer from.
        limits: every bound of the HTTP server.
    """

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        gazetteer: Gazetteer,
        limits: HTTPLimits | None = None,
    ) -> None:
        self.limits = limits or HTTPLimits()
        self._thread = ServerThread(
            lambda: open_geo_server(host, port, context, gazetteer, self.limits)
        )
        self._server: ConnectionServer | None = None

    @property
    def server(self) -> ConnectionServer:
        """The connection server (once started)."""
        assert self._server is not None, "the geocoder has not started"
        return self._server

    @property
    def socket(self) -> socket.socket:
        """The listening socket."""
        return self.server.socket

    @property
    def address(self) -> tuple[str, int]:
        """``(address, port)`` really bound."""
        host, port = self.server.address
        return str(host), int(port)

    @property
    def evicted(self) -> int:
        """Connections closed so far to make room for a new one."""
        return self.server.evicted

    def start(self) -> GeoServer:
        """Bind and start serving in a background thread.

        Raises:
            ConnectError: the address cannot be bound.
        """
        self._server = self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the thread."""
        self._thread.stop()
