"""HTTP/1.1 over a bare socket, with h11 doing the parsing, keeping every byte that crossed.

:func:`raw_get` connects (TLS with an explicit context for ``https://``), lets h11 write the
request, sends it, and feeds h11 what comes back until the response ends, keeping the exact
bytes in both directions (:class:`RawExchange`). A server that closes early, answers
something that is not HTTP, or sends more than ``max_bytes`` gives one
:class:`~wirelab.errors.RemoteProtocolError` (or a transport error), never a traceback.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field

import h11

from wirelab.errors import (
    Broken,
    ConfigError,
    ConnectError,
    RemoteProtocolError,
    Timeout,
    TLSError,
    WirelabError,
)
from wirelab.net.addresses import connect_tcp

__all__ = ["DEFAULT_MAX_BYTES", "RawExchange", "raw_get"]

#: The most bytes a response may take (head and body) before we stop (10 MiB).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: The most bytes of response head h11 buffers (its own default is 16 KiB).
MAX_HEAD = 64 * 1024


@dataclass
class RawExchange:
    """What crossed the wire for one request: ``sent`` and ``received``, byte for byte."""

    sent: bytes
    received: bytes
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    framing: str = ""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form (the bytes as Latin-1 text, one character per byte)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "headers": [[n, v] for n, v in self.headers],
            "framing": self.framing,
            "sent": self.sent.decode("latin-1"),
            "received": self.received.decode("latin-1"),
        }


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"bad URL {url!r}: give http://HOST[:PORT]/PATH or https://...")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"bad URL {url!r}: {exc}") from exc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, parts.hostname, port, target


def _host_header(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return shown if port == default else f"{shown}:{port}"


def raw_get(
    url: str,
    *,
    method: str = "GET",
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    headers: list[tuple[str, str]] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> RawExchange:
    """One request over a fresh connection (``Connection: close``), every byte kept.

    Args:
        url: ``http://`` or ``https://`` URL; playground names connect to the lab.
        ssl_context: the trust for ``https://`` (default: the lab CA for lab names, else the
            system store).
        headers: extra request headers (after ``Host``, ``User-Agent`` and ``Connection``).

    Raises:
        ConfigError: a bad URL or method. TransportError subclasses: the connection.
        RemoteProtocolError: the response broke HTTP/1.1, ended early, or was too large.
    """
    scheme, host, port, target = _split(url)
    if not method.isalpha() or not method.isupper():
        raise ConfigError(f"bad method {method!r}: upper-case letters only")
    request_headers = [
        ("Host", _host_header(host, port, scheme)),
        ("User-Agent", "wirelab-raw/1"),
        ("Accept", "*/*"),
        ("Connection", "close"),
        *(headers or []),
    ]
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    try:
        wire = conn.send(h11.Request(method=method, target=target, headers=request_headers))
        wire += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise ConfigError(f"cannot send that request: {exc}") from exc
    sock = connect_tcp(host, port, timeout=timeout)
    received = bytearray()
    exchange = RawExchange(sent=wire, received=b"")
    try:
        if scheme == "https":
            if ssl_context is None:
                from wirelab.http.client import lab_aware_context

                ssl_context = lab_aware_context(url)
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                raise TLSError(f"TLS with {host}:{port}: {exc.verify_message}") from exc
            except (ssl.SSLError, OSError) as exc:
                raise TLSError(f"TLS with {host}:{port} failed: {exc}") from exc
        sock.sendall(wire)
        _read_response(sock, conn, received, exchange, timeout, max_bytes, method)
    except WirelabError:
        raise
    except TimeoutError as exc:
        raise Timeout(f"{host}:{port} did not finish its answer within {timeout:g} s") from exc
    except OSError as exc:
        raise Broken(f"the connection to {host}:{port} broke: {exc.strerror or exc}") from exc
    finally:
        exchange.received = bytes(received)
        sock.close()
    return exchange


def _read_response(
    sock: socket.socket,
    conn: h11.Connection,
    received: bytearray,
    exchange: RawExchange,
    timeout: float,
    max_bytes: int,
    method: str,
) -> None:
    deadline = time.monotonic() + timeout
    body = bytearray()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            if eof and not exchange.status:
                raise RemoteProtocolError(
                    "the server closed the connection without an answer"
                    + (f" ({len(received)} bytes of a partial head)" if received else "")
                ) from exc
            if eof:
                raise RemoteProtocolError(
                    "the server closed the connection in the middle of the body "
                    f"({len(body)} bytes received)"
                ) from exc
            raise RemoteProtocolError(f"not a valid HTTP/1.1 response: {exc}") from exc
        if event is h11.NEED_DATA:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"no complete answer within {timeout:g} s")
            sock.settimeout(left)
            data = sock.recv(65536)
            received += data
            eof = not data
            if len(received) > max_bytes:
                raise RemoteProtocolError(f"the response is over {max_bytes} bytes: stopped")
            conn.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            exchange.status = event.status_code
            exchange.reason = event.reason.decode("latin-1")
            exchange.headers = [
                (n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers
            ]
            from wirelab.http.client import framing_of

            exchange.framing = framing_of(method, event.status_code, exchange.headers)
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            exchange.body = bytes(body)
            return
        elif isinstance(event, h11.ConnectionClosed):
            if exchange.status:
                raise RemoteProtocolError(
                    f"the server closed the connection in the middle of the body "
                    f"({len(body)} bytes received)"
                )
            raise RemoteProtocolError("the server closed the connection without an answer")
        elif event is h11.PAUSED:  # pragma: no cover - we never pipeline
            raise ConnectError("the connection paused unexpectedly")
