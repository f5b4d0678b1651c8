"""HTTP clients of chapter 9: requests with an explicit TLS context, and urllib beside it.

:class:`HTTPClient` is one ``requests.Session`` (docs/decisions/0090: requests, the book's
library, not httpx) with three things the book's doctests could only talk about made visible:

* **the wire**: every connection is a recording connection, so each :class:`Exchange` keeps
  the request bytes exactly as they were sent, which connection carried it, and how the
  response body was delimited (``Content-Length``, ``chunked``, or the server closing);
* **connection reuse** (F53): :attr:`HTTPClient.connections_opened` counts the TCP
  connections the session really opened;
* **trust**: HTTPS goes through one explicit ``SSLContext`` (the lab CA for the lab's names
  while a lab runs, else the system store, or ``cafile``) through :class:`ContextAdapter`;
  verification cannot be turned off. Playground names (``www.example.com``) connect to the
  running lab (:func:`wirelab.net.addresses.lab_address`) while SNI and the certificate
  check use the name.

Redirects (F49) are followed with their history, or not (``follow=False``); a status of 400
or more raises :class:`HTTPStatusError` carrying the status and headers (F50) when
``raise_for_status`` is set; ``auth`` sends Basic credentials (F51); cookies persist across
the session (F52). :func:`urllib_exchange` makes the same request with ``urllib.request``
over the same recording, so the two libraries' request headers can be compared (F48).

The connections themselves (the recording, the adapter, the lab's trust and ports) live in
:mod:`wirelab.http.transport`; their public names are importable from here as before.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from wirelab.errors import (
    Broken,
    ConfigError,
    ConnectError,
    ConnectionRefused,
    NameResolutionError,
    ProtocolError,
    RemoteProtocolError,
    Timeout,
    TLSError,
)
from wirelab.http.transport import (
    ContextAdapter,
    Recorder,
    _dns_host,
    lab_aware_context,
    lab_url,
)
from wirelab.net.tlsctx import client_context

__all__ = [
    "DEFAULT_MAX_BODY",
    "ContextAdapter",
    "Exchange",
    "HTTPClient",
    "HTTPStatusError",
    "Hop",
    "Recorder",
    "error_reason",
    "framing_of",
    "lab_aware_context",
    "lab_url",
    "map_requests_error",
    "urllib_exchange",
]

#: The most body bytes one response may carry before we stop reading (10 MiB).
DEFAULT_MAX_BODY = 10 * 1024 * 1024
#: Redirects followed before giving up (requests' own default is 30).
MAX_REDIRECTS = 10


class HTTPStatusError(ProtocolError):
    """The server answered with a status of 400 or more (``code``), with these headers."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        headers: list[tuple[str, str]],
        status_line: str = "",
    ) -> None:
        super().__init__(message, code=code)
        self.headers = headers
        self.status_line = status_line or f"HTTP/1.1 {code}"


# -- one exchange ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One redirect on the way: its status, the URL that gave it, where it pointed."""

    status: int
    reason: str
    url: str
    location: str


@dataclass
class Exchange:
    """One request and its final response.

    Attributes:
        request: the bytes of the final request exactly as sent (head and body).
        connection: which connection of the session carried it (1, 2 ...).
        framing: how the body was delimited (``"Content-Length: 35"``, ``"chunked"``,
            ``"until the server closed the connection"``, ``"no body"``).
    """

    method: str
    url: str
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    request: bytes
    connection: int
    framing: str
    history: list[Hop] = field(default_factory=list)

    @property
    def head(self) -> str:
        """The status line and headers as HTTP text."""
        lines = [f"{self.version} {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return "\r\n".join(lines) + "\r\n"

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes escaped)."""
        return self.body.decode("utf-8", "backslashreplace")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "reason": self.reason,
            "version": self.version,
            "headers": [[n, v] for n, v in self.headers],
            "connection": self.connection,
            "framing": self.framing,
            "history": [h.__dict__ for h in self.history],
            "request": self.request.decode("latin-1"),
            "body": self.text(),
        }


def framing_of(method: str, status: int, headers: Sequence[tuple[str, str]]) -> str:
    """How an HTTP/1.x response body is delimited (RFC 9112 section 6.3), in words."""
    names = {name.lower(): value for name, value in headers}
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "no body"
    te = names.get("transfer-encoding", "")
    if te:
        return "chunked" if te.lower().rstrip().endswith("chunked") else f"Transfer-Encoding: {te}"
    if "content-length" in names:
        return f"Content-Length: {names['content-length']}"
    return "until the server closed the connection"


def map_requests_error(exc: Exception, url: str) -> Exception:
    """The :mod:`wirelab.errors` error for a requests exception met fetching ``url``."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSError(f"TLS with {url} failed: {error_reason(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Timeout(f"no answer from {url} in time")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return RemoteProtocolError(f"more than {MAX_REDIRECTS} redirects from {url}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "NameResolution" in text or "Name or service not known" in text:
            return NameResolutionError(f"cannot resolve the host of {url}")
        if "Connection refused" in text:
            return ConnectionRefused(f"connection refused by {url}")
        if "RemoteDisconnected" in text or "reset" in text.lower() or "aborted" in text.lower():
            return Broken(f"{url} closed the connection without a whole answer")
        return ConnectError(f"cannot reach {url}: {error_reason(exc)}")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ConfigError(f"bad URL {url!r}: {error_reason(exc)}")
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return ConfigError(f"bad URL {url!r}: only http:// and https:// are spoken here")
    return RemoteProtocolError(f"{url}: {error_reason(exc)}")


def error_reason(exc: BaseException) -> str:
    """The first line of what went wrong underneath ``exc`` (a certificate's verify message)."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    for candidate in (inner, exc):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {candidate.verify_message}"
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0][:200]


class HTTPClient:
    """A requests session with a recorded wire, an explicit TLS context and limits.

    Args:
        timeout: seconds for the connection and for each read.
        ssl_context: the trust for HTTPS (default: :func:`lab_aware_context` per URL).
        auth: ``(user, password)`` sent with Basic authentication on every request.
        max_body: the most body bytes per response.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if timeout <= 0 or max_body <= 0:
            raise ConfigError("timeout and max_body must be positive")
        self.timeout = timeout
        self.max_body = max_body
        self._fixed_context = ssl_context
        self.recorder = Recorder()
        self.session = requests.Session()
        self.session.max_redirects = MAX_REDIRECTS
        self.session.trust_env = False  # no proxy or CA bundle from the environment
        if auth is not None:
            self.session.auth = auth
        self._adapters: dict[int, ContextAdapter] = {}
        self._plain = ContextAdapter(client_context(), self.recorder)
        self.session.mount("http://", self._plain)

    @property
    def connections_opened(self) -> int:
        """TCP connections this session opened so far."""
        return self.recorder.opened

    def _mount_for(self, url: str) -> None:
        context = self._fixed_context or lab_aware_context(url)
        adapter = self._adapters.get(id(context))
        if adapter is None:
            adapter = ContextAdapter(context, self.recorder)
            self._adapters = {id(context): adapter}
            self._fixed_context = context
        self.session.mount("https://", adapter)

    def get(self, url: str, **kwargs: Any) -> Exchange:
        """``GET url``; see :meth:`request`."""
        return self.request("GET", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        follow: bool = True,
        raise_for_status: bool = False,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Exchange:
        """Send one request (following redirects unless ``follow`` is false).

        Raises:
            HTTPStatusError: the final status is 400 or more and ``raise_for_status``.
            ConfigError: a bad URL. TLSError, Timeout, ConnectError ...: the transport.
            RemoteProtocolError: too many redirects, a body over ``max_body``, bad framing.
        """
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"bad URL {url!r}: give http://HOST/... or https://HOST/...")
        if scheme == "https":
            self._mount_for(url)
        self.recorder.sent.clear()
        try:
            response = self.session.request(
                method,
                url,
                allow_redirects=follow,
                timeout=self.timeout,
                headers=headers,
                data=data,
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            raise map_requests_error(exc, url) from exc
        with response:
            body = self._read_body(response, url)
        number, sent = self.recorder.take()
        hops = [
            Hop(r.status_code, r.reason or "", r.url, r.headers.get("Location", ""))
            for r in response.history
        ]
        raw_headers = list(response.raw.headers.items())
        version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(response.raw.version, "HTTP/1.1")
        exchange = Exchange(
            method=method,
            url=response.url,
            status=response.status_code,
            reason=response.reason or "",
            version=version,
            headers=raw_headers,
            body=body,
            request=sent,
            connection=number,
            framing=framing_of(method, response.status_code, raw_headers),
            history=hops,
        )
        del response  # an exception's frames must not keep the response's socket alive
        if raise_for_status and exchange.status >= 400:
            kind = "Client" if exchange.status < 500 else "Server"
            raise HTTPStatusError(
                f"{exchange.status} {kind} Error: {exchange.reason} for url: {exchange.url}",
                code=exchange.status,
                headers=raw_headers,
                status_line=f"{exchange.version} {exchange.status} {exchange.reason}",
            )
        return exchange

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > self.max_body:
                    raise RemoteProtocolError(
                        f"the body from {url} is over {self.max_body} bytes: stopped reading"
                    )
                parts.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise map_requests_error(exc, url) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise RemoteProtocolError(f"{url}: bad response body: {error_reason(exc)}") from exc
        return b"".join(parts)

    def close(self) -> None:
        """Close every pooled connection."""
        self.session.close()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- urllib, for comparison (F48) -------------------------------------------------------------


def _urllib_connections(sent: list[bytes]) -> tuple[type[Any], type[Any]]:
    def create(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        host, port = address
        return socket.create_connection((_dns_host(host), port), timeout, source)

    class Conn(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create

        def send(self, data: Any) -> None:
            if isinstance(data, bytes | bytearray):
                sent.append(bytes(data))
            super().send(data)

    class SConn(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create

        def send(self, data: Any) -> None:
            if isinstance(data, bytes | bytearray):
                sent.append(bytes(data))
            super().send(data)

    return Conn, SConn


def urllib_exchange(
    url: str, *, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None
) -> tuple[int, bytes, bytes]:
    """``GET url`` with ``urllib.request`` (following redirects, as it does).

    Returns:
        ``(status, request bytes as sent, body)``; an HTTP error status is returned, not
        raised (the status and body are what matters here).
    """
    sent: list[bytes] = []
    conn_cls, sconn_cls = _urllib_connections(sent)
    context = ssl_context or lab_aware_context(url)

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(conn_cls, req)  # type: ignore[arg-type]

    class Secure(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(sconn_cls, req, context=context)  # type: ignore[arg-type]

    opener = urllib.request.build_opener(Plain(), Secure(context=context))
    try:
        with opener.open(url, timeout=timeout) as response:
            status, body = response.status, response.read(DEFAULT_MAX_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            status, body = exc.code, exc.read(DEFAULT_MAX_BODY)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLError):
            raise TLSError(f"TLS with {url} failed: {error_reason(reason)}") from exc
        if isinstance(reason, TimeoutError | socket.timeout):
            raise Timeout(f"no answer from {url} in time") from exc
        raise ConnectError(f"cannot reach {url}: {reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise Broken(f"{url}: {error_reason(exc)}") from exc
    return status, (sent[-1] if sent else b""), body
