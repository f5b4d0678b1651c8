"""The lab geocoder over HTTPS (HTTP/1.1 RFC 9112, TLS 1.2+): h11 parses, we bound everything.

Requests are parsed by h11 (docs/decisions/0033-geocoder-requests-parsed-by-h11.md), which
refuses every request-smuggling shape RFC 9112 says must get a 400: a space before a header
colon, a header line with no colon, two different Content-Length values, a Content-Length that
is not ASCII digits (or has over 20 of them), HTTP/1.1 without Host. Our limits sit on top,
checked on the raw bytes before h11 sees a whole head, and again on the parsed request:

* connections: at most ``max_connections`` at once. When all are taken, a new connection
  **evicts** the one that has waited longest for a request head (in its TLS handshake, or
  reading a head, or idle between keep-alive requests); only when every connection is busy
  answering is the new one closed (one warning line per burst);
* TLS: the handshake runs in the connection's thread, under ``handshake_timeout``;
* time: a whole request head (and its small body) must arrive within ``head_timeout`` of the
  moment the server starts waiting for it (as nginx's ``client_header_timeout``), else 408
  and close, or a silent close for a connection that sent nothing; each write has
  ``io_timeout``. So a client sending one byte every few seconds holds a slot for at most
  ``head_timeout`` seconds, and while it holds one a normal client evicts it;
* the request line (``max_request_line``, else 414), the header block (``max_header_line``,
  ``max_headers``, ``max_header_bytes``, else 431), request bodies (a GET may carry at most
  ``max_body`` bytes, else 413; any Transfer-Encoding in a request is a 400) and the requests
  served per connection (``max_requests``);
* every error is a JSON document with our own words, sent with ``Connection: close``; the
  connection is then closed. Each is logged on one line, with any ``key=`` redacted.

:class:`Exchange` is the sans-I/O part (bytes in, bytes out, never an exception); the server
is the thread-per-connection I/O around it.

Why not :class:`wirelab.net.server.ConnectionServer`, the project's one connection server:
it refuses a connection over its cap, where the geocoder must evict the slowest unfinished
head to keep a normal client served during a slowloris; its idle timeout counts any byte as
progress, so a client sending one byte every 3 s is never idle; and a lookup in the gazetteer
is blocking CPU work that would stall its event loop. A thread per connection, at most 64,
does all three in a few lines here.

Successful ``/search`` answers to HTTP/1.1 clients are sent with chunked transfer encoding,
as Nominatim's own servers do, so clients meet both body framings.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import h11

from wirelab.errors import ConfigError
from wirelab.geo.api import ApiResponse, handle
from wirelab.geo.gazetteer import Gazetteer

__all__ = ["Exchange", "GeoServer", "HTTPLimits"]

log = logging.getLogger(__name__)

_BLANK_LINE = re.compile(rb"\n\r?\n")
_KEY = re.compile(rb"([?&]key=)[^&\s]*", re.I)

SERVER_NAME = b"wirelab-geo/1.0"

#: Bytes asked of the connection per read.
_RECV = 16 << 10

#: Seconds between two overload lines: one line per burst, not one per connection.
_OVERLOAD_LOG_PERIOD = 10.0


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
        eof = not data
        if not eof and conn.their_state is h11.IDLE and not conn.trailing_data[0]:
            data = data.lstrip(b"\r\n")  # RFC 9112 section 2.2: blank lines before a request
            if not data:
                return b""
        if conn.their_state is h11.IDLE:  # the start of this head, for messages and the log
            self._head = (conn.trailing_data[0] + data)[: self.limits.max_request_line + 2]
        conn.receive_data(data)
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
                if eof:  # the client closed mid-request: nobody to tell
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
        out = [conn.send(h11.Response(status_code=answer.status, headers=headers)) or b""]
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
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        lines = [f"HTTP/1.1 {status} {reason}".encode()]
        lines += [b"%s: %s" % pair for pair in self._headers("application/json; charset=utf-8")]
        lines += [b"Content-Length: %d" % len(body), b"Connection: close", b"", b""]
        if request is not None and request.method == b"HEAD":
            body = b""
        return b"\r\n".join(lines) + body


@dataclass
class _Slot:
    """One connection, as the eviction policy sees it."""

    #: The connection's socket: the accepted one, then its TLS wrapper (the same descriptor).
    sock: socket.socket
    peer: str
    #: When it started waiting for its handshake or its current request head.
    since: float
    #: Waiting (handshake, head, keep-alive idle): may be evicted. False while answering.
    waiting: bool = True
    evicted: bool = False

    def evict(self) -> None:
        self.evicted = True
        with contextlib.suppress(OSError):
            # The descriptor's own shutdown (not SSLSocket's, which would drop its TLS state
            # under the thread reading it): the blocked read or handshake returns at once.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)


class _Server(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        gazetteer: Gazetteer,
        limits: HTTPLimits,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, socketserver.BaseRequestHandler)
        self.context = context
        self.gazetteer = gazetteer
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_connections)
        self.live: dict[threading.Thread, _Slot] = {}
        self.live_lock = threading.Lock()
        self.counter = 0
        #: Connections evicted to make room, and refused because every one was answering.
        self.evicted = 0
        self.refused = 0
        self._last_overload_line = -_OVERLOAD_LOG_PERIOD
        self._unlogged = 0

    def _overload(self, what: str) -> None:
        now = time.monotonic()
        self._unlogged += 1
        if now - self._last_overload_line >= _OVERLOAD_LOG_PERIOD:
            log.warning(
                "geocoder: all %d connections taken; %s (%d such since the last line)",
                self.limits.max_connections,
                what,
                self._unlogged,
            )
            self._last_overload_line, self._unlogged = now, 0

    def _make_room(self) -> bool:
        """Evict the connection that has waited longest for a request; True if one went."""
        with self.live_lock:
            waiting = [slot for slot in self.live.values() if slot.waiting and not slot.evicted]
            victim = min(waiting, key=lambda slot: slot.since, default=None)
        if victim is None:
            return False
        victim.evict()
        self.evicted += 1
        self._overload("evicting the connection that waited longest for a request")
        return self.slots.acquire(timeout=2.0)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False) and not self._make_room():
            self.refused += 1
            self._overload("every one is answering; closing the new one")
            self.shutdown_request(request)
            return
        self.counter += 1
        slot = _Slot(request, str(client_address[0]), time.monotonic())
        worker = threading.Thread(
            target=self._connection,
            args=(slot,),
            name=f"wirelab-lab-geo-{self.counter}",
            daemon=True,
        )
        with self.live_lock:
            self.live[worker] = slot
        worker.start()

    def _connection(self, slot: _Slot) -> None:
        try:
            slot.sock.settimeout(self.limits.handshake_timeout)
            # Without NODELAY, Nagle's algorithm holds a reply's last segment until the
            # client's delayed ACK (40 ms per keep-alive request).
            slot.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Wrapping takes the descriptor from the accepted socket: the slot holds the
            # wrapper before the handshake starts, so an eviction can still interrupt it.
            try:
                tls = _wrap(self.context, slot.sock)
                slot.sock = tls
                if slot.evicted:
                    raise ConnectionAbortedError("evicted before its handshake")
                tls.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                why = "evicted" if slot.evicted else str(exc)
                log.info("TLS handshake with %s failed: %s", slot.peer, why)
                return
            self._converse(tls, slot)
        except Exception:
            log.exception("geocoder connection from %s failed", slot.peer)
        finally:
            with self.live_lock:
                self.live.pop(threading.current_thread(), None)
            _close(slot.sock)
            self.slots.release()

    def _converse(self, tls: ssl.SSLSocket, slot: _Slot) -> None:
        limits = self.limits
        exchange = Exchange(limits, lambda target: handle(target, self.gazetteer))
        slot.since, slot.waiting = time.monotonic(), True
        deadline = slot.since + limits.head_timeout
        try:
            while not exchange.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    late = exchange.timed_out()
                    if late:
                        log.info(
                            "%s: no whole request within %g s: 408", slot.peer, limits.head_timeout
                        )
                        _send(tls, late, limits.io_timeout)
                    else:
                        log.debug("%s: idle for %g s; closed", slot.peer, limits.head_timeout)
                    return
                tls.settimeout(min(remaining, limits.io_timeout))
                try:
                    data = tls.recv(_RECV)
                except TimeoutError:
                    continue
                before = exchange.served
                slot.waiting = False
                out = exchange.receive(data)
                if out:
                    _send(tls, out, limits.io_timeout)
                for status, message, line in exchange.errors:
                    level = logging.DEBUG if status == 404 else logging.INFO
                    log.log(level, "%s %r: %d %s", slot.peer, line, status, message)
                exchange.errors.clear()
                if exchange.served != before:  # a new head's deadline starts now
                    slot.since = time.monotonic()
                    deadline = slot.since + limits.head_timeout
                slot.waiting = True
                if not data:
                    return
        except TimeoutError:
            log.info("%s: a write timed out; closed", slot.peer)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            why = "evicted to make room" if slot.evicted else str(exc)
            log.info("connection from %s broke: %s", slot.peer, why)

    def stop(self, timeout: float = 5.0) -> None:
        self.shutdown()
        self.server_close()
        with self.live_lock:
            slots = list(self.live.items())
        for _, slot in slots:
            slot.evict()
        for worker, _ in slots:
            worker.join(timeout)


def _wrap(context: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """``sock`` wrapped for a server-side handshake (not started), or an error and no leak.

    ``wrap_socket`` takes the descriptor from ``sock`` first; when the peer has already reset
    the connection, Python 3.11's ``SSLSocket._create`` can then raise (``ECONNRESET`` from its
    probe read) without closing the new socket, which is left for the garbage collector (a
    ``ResourceWarning``). So: no wrapping for a peer already gone, and on failure the socket
    it made is found in the traceback and closed.
    """
    sock.getpeername()  # OSError (ENOTCONN) for a connection reset before we got to it
    try:
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None:
            made = tb.tb_frame.f_locals.get("self")
            if isinstance(made, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    made.close()
            tb = tb.tb_next
        del tb
        raise


def _send(sock: socket.socket, data: bytes, timeout: float) -> None:
    sock.settimeout(timeout)
    sock.sendall(data)


def _close(sock: socket.socket) -> None:
    """Half-close, drop what the client still sends (briefly), then close.

    Closing with unread bytes makes the kernel send a reset, which can destroy our last
    reply (a 413, a 400) before the client reads it.
    """
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)
        dropped = 0
        while dropped < 64 << 10:
            chunk = sock.recv(_RECV)
            if not chunk:
                break
            dropped += len(chunk)
    sock.close()


class GeoServer:
    """The geocoder on ``host:port`` over TLS, serving from its own threads until stopped.

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
        self._server = _Server((host, port), context, gazetteer, limits or HTTPLimits())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="wirelab-lab-geo",
            daemon=True,
        )

    @property
    def socket(self) -> socket.socket:
        """The listening socket."""
        return self._server.socket

    @property
    def address(self) -> tuple[str, int]:
        """``(address, port)`` really bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def evicted(self) -> int:
        """Connections evicted so far to make room for a new one."""
        return self._server.evicted

    @property
    def refused(self) -> int:
        """Connections closed at once because every slot was answering a request."""
        return self._server.refused

    def start(self) -> GeoServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the threads."""
        if self._thread.is_alive():
            self._server.stop()
            self._thread.join(5.0)
        else:
            self._server.server_close()
