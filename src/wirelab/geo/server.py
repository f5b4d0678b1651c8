"""The lab geocoder over HTTPS (HTTP/1.1 RFC 9112, TLS 1.2+): stdlib ``http.server``, bounded.

A :class:`ThreadingHTTPServer` (one thread per connection) is enough for a lab service, once
every resource has a limit (docs/decisions/0031-geocoder-http-server.md):

* connections: at most ``max_connections`` at once; one more is closed before its handshake;
* TLS: the handshake runs in the connection's thread, under ``handshake_timeout``, so a
  silent client never blocks the accept loop;
* time: every read and write has ``io_timeout``; an idle keep-alive connection is closed;
* the request line (``max_request_line``, else 414), the header block (``max_header_line``,
  ``max_headers``, ``max_header_bytes``, else 431), request bodies (a GET may carry at most
  ``max_body`` bytes, else 413 and close; chunked request bodies are refused) and the
  requests served per connection (``max_requests``);
* errors are JSON documents, and each is logged on one line, with any ``key=`` redacted.

Successful ``/search`` answers to HTTP/1.1 clients are sent with chunked transfer encoding,
as Nominatim's own servers do, so clients meet both body framings.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wirelab.geo.api import ApiResponse, handle
from wirelab.geo.gazetteer import Gazetteer

__all__ = ["GeoServer", "HTTPLimits"]

log = logging.getLogger(__name__)

_KEY = re.compile(r"([?&]key=)[^&\s]*", re.I)


@dataclass(frozen=True)
class HTTPLimits:
    """Every bound of the geocoder's HTTP server, with its default."""

    max_connections: int = 64
    handshake_timeout: float = 5.0
    io_timeout: float = 10.0
    max_request_line: int = 16 << 10
    max_header_line: int = 8 << 10
    max_headers: int = 64
    max_header_bytes: int = 32 << 10
    max_body: int = 1 << 10
    max_requests: int = 100
    chunk_size: int = 512


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "wirelab-geo/1.0"
    sys_version = ""
    error_content_type = "application/json; charset=utf-8"

    def setup(self) -> None:
        self.served = 0  # the socket already has the I/O timeout (set before the handshake)
        super().setup()

    # -- reading, with limits -----------------------------------------------------------------

    def handle_one_request(self) -> None:
        limits = self.server.limits
        try:
            line = self.rfile.readline(limits.max_request_line + 1)
            if not line:
                self.close_connection = True
                return
            if len(line) > limits.max_request_line:
                self.requestline, self.request_version, self.command = "", "HTTP/1.1", "GET"
                self.send_error(414, "request line too long")
                self.close_connection = True
                return
            self.raw_requestline = line
            block = self._header_block()
            if block is None:
                return
            saved, self.rfile = self.rfile, io.BytesIO(block)
            try:
                ok = self.parse_request()
            finally:
                self.rfile = saved
            if not ok:
                return
            if self.request_version == "HTTP/0.9":
                self.send_error(400, "HTTP/0.9 is not supported")
                return
            self.served += 1
            if self.served >= limits.max_requests:
                self.close_connection = True
            if self.command in ("GET", "HEAD"):
                self._serve(head=self.command == "HEAD")
            else:
                self.close_connection = True
                self.send_error(405, f"method {self.command} is not allowed")
            self.wfile.flush()
        except TimeoutError:
            log.info("closing an idle or slow connection from %s", self.client_address[0])
            self.close_connection = True
        except (ConnectionError, ssl.SSLError) as exc:
            log.info("connection from %s broke: %s", self.client_address[0], exc)
            self.close_connection = True

    def _header_block(self) -> bytes | None:
        limits = self.server.limits
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(limits.max_header_line + 1)
            total += len(line)
            if len(line) > limits.max_header_line or total > limits.max_header_bytes:
                self._refuse_headers("request header fields too large")
                return None
            if len(lines) > limits.max_headers:
                self._refuse_headers("too many request header fields")
                return None
            if line in (b"\r\n", b"\n", b""):
                return b"".join(lines) + b"\r\n"
            lines.append(line)

    def _refuse_headers(self, why: str) -> None:
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")[:200]
        self.request_version, self.command = "HTTP/1.1", "GET"
        self.close_connection = True
        self.send_error(431, why)

    def _discard_body(self) -> bool:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self.send_error(400, "request bodies with Transfer-Encoding are not accepted")
            return False
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            self.close_connection = True
            self.send_error(400, "bad Content-Length")
            return False
        if int(length) > self.server.limits.max_body:
            self.close_connection = True
            self.send_error(413, "request body too large")
            return False
        if int(length):
            self.rfile.read(int(length))
        return True

    # -- answering ----------------------------------------------------------------------------

    def _serve(self, *, head: bool) -> None:
        if not self._discard_body():
            return
        answer = handle(self.path.encode("latin-1"), self.server.gazetteer)
        self._send(answer, head=head)

    def _send(self, answer: ApiResponse, *, head: bool = False) -> None:
        chunked = answer.streamable and self.request_version == "HTTP/1.1" and not head
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Cache-Control", "no-store")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if not chunked:
            self.wfile.write(answer.body)
            return
        size = self.server.limits.chunk_size
        framed = [
            b"%x\r\n%s\r\n" % (len(piece), piece)
            for piece in (answer.body[i : i + size] for i in range(0, len(answer.body), size))
        ]
        self.wfile.write(b"".join([*framed, b"0\r\n\r\n"]))  # one write: no Nagle stall

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors are JSON, like every other answer."""
        text = message or self.responses.get(code, ("error",))[0]
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # always answer with a status line and headers
            self.close_connection = True
        body = json.dumps({"error": {"code": code, "message": text}}).encode()
        if code >= 400 and code not in (404,):
            self.log_error("%d %s", code, text)
        self._send(ApiResponse(code, body), head=getattr(self, "command", "") == "HEAD")

    # -- logging: one line, through logging, credentials redacted ------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = _KEY.sub(r"\1<redacted>", getattr(self, "requestline", ""))
        log.debug("%s %r %s", self.client_address[0], line[:200], code)

    def log_error(self, format: str, *args: Any) -> None:
        line = _KEY.sub(r"\1<redacted>", getattr(self, "requestline", ""))
        log.info("%s %r: %s", self.client_address[0], line[:200], format % args)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        gazetteer: Gazetteer,
        limits: HTTPLimits,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.context = context
        self.gazetteer = gazetteer
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_connections)
        self.live: set[socket.socket] = set()
        self.live_lock = threading.Lock()
        self.workers: set[threading.Thread] = set()
        self.counter = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            log.warning("refusing %s: %d connections open", client_address[0], len(self.live))
            self.shutdown_request(request)
            return
        self.counter += 1
        worker = threading.Thread(
            target=self._connection,
            args=(request, client_address),
            name=f"wirelab-lab-geo-{self.counter}",
            daemon=True,
        )
        with self.live_lock:
            self.workers.add(worker)
        worker.start()

    def _connection(self, request: socket.socket, client_address: Any) -> None:
        tls: socket.socket | None = None
        with self.live_lock:
            self.live.add(request)
        try:
            request.settimeout(self.limits.handshake_timeout)
            # Headers and body leave in separate writes; without NODELAY, Nagle's algorithm
            # holds the second until the client's delayed ACK (40 ms per keep-alive request).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                tls = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                return
            tls.settimeout(self.limits.io_timeout)
            self.finish_request(tls, client_address)
        except Exception:
            log.exception("geocoder connection from %s failed", client_address[0])
        finally:
            with self.live_lock:
                self.live.discard(request)
                self.workers.discard(threading.current_thread())
            self.shutdown_request(tls if tls is not None else request)
            self.slots.release()

    def stop(self, timeout: float = 5.0) -> None:
        self.shutdown()
        self.server_close()
        with self.live_lock:
            for sock in self.live:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            workers = list(self.workers)
        for worker in workers:
            worker.join(timeout)


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
