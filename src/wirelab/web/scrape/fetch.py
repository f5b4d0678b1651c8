"""One bounded HTTP fetch for scrapers and crawlers, on a requests session.

The session keeps cookies (a login carries over), trusts one explicit ``SSLContext`` per host
(the lab CA for a lab name or loopback while a lab runs, else the system's store:
:func:`wirelab.http.client.lab_aware_context`; verification cannot be turned off), connects
playground names (``www.example.com``) to the running lab, and takes nothing from the
environment (no proxy, no CA bundle).

Every fetch has limits: a timeout per connection and per read, :attr:`Fetcher.max_bytes` of
body, :attr:`Fetcher.max_redirects` hops followed one by one (so each hop can be checked
against robots.txt and the host, and a loop is named as one), and a body that is not HTML is
not read at all when only HTML is wanted (the book's crawler downloaded every PDF in full
before throwing it away). Failures are :mod:`wirelab.errors` exceptions with one line.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests
import urllib3

from wirelab import __version__
from wirelab.errors import (
    Broken,
    ConfigError,
    RemoteProtocolError,
)
from wirelab.http.client import (
    ContextAdapter,
    Recorder,
    error_reason,
    lab_aware_context,
    map_requests_error,
)
from wirelab.web.scrape.urls import check_url

__all__ = ["DEFAULT_MAX_BYTES", "USER_AGENT", "Fetched", "Fetcher", "is_html"]

#: The largest page read (bytes).
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
#: How our scrapers and crawlers name themselves (robots.txt rules match on ``wirelab``).
USER_AGENT = (
    f"wirelab-crawler/{__version__} (+chapter 11 of Foundations of Python Network Programming)"
)
_REDIRECTS = (301, 302, 303, 307, 308)


def is_html(content_type: str) -> bool:
    """True for ``text/html`` and ``application/xhtml+xml`` (any parameters)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml")


@dataclass
class Fetched:
    """What one fetch got.

    Attributes:
        url: the URL of the last response (after the redirects followed).
        status: its status code (a 3xx when ``may_follow`` refused the next hop).
        content_type: its ``Content-Type`` (``""`` if none).
        body: its body, or ``None`` when it was not read (not HTML and ``html_only``).
        location: where a refused redirect pointed (absolute), else ``""``.
        hops: the URLs redirected through, in order, before ``url``.
        headers: the last response's headers as sent (repeats kept: ``Set-Cookie``).
    """

    url: str
    status: int
    content_type: str
    body: bytes | None
    location: str = ""
    hops: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def html(self) -> bool:
        """True when the response is HTML."""
        return is_html(self.content_type)

    def text(self) -> str:
        """The body decoded with the charset the response named (UTF-8 if none)."""
        charset = "utf-8"
        for param in self.content_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"').lower()
        try:
            return (self.body or b"").decode(charset, "replace")
        except LookupError:
            return (self.body or b"").decode("utf-8", "replace")


class Fetcher:
    """A requests session with limits (see the module docstring).

    Args:
        timeout: seconds for the connection and for each read (> 0).
        max_bytes: the most body bytes read from one response.
        max_redirects: redirects followed for one fetch.
        ssl_context: the trust for every HTTPS host (default: :func:`lab_aware_context`).
        user_agent: the ``User-Agent`` sent.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 10,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        if not timeout > 0 or max_bytes <= 0 or max_redirects < 0:
            raise ConfigError("timeout and max_bytes must be above zero, max_redirects >= 0")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.requests = 0
        self._context = ssl_context
        self._recorder = Recorder()
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy, no CA bundle from the environment
        self.session.max_redirects = max_redirects
        self.session.headers["User-Agent"] = user_agent
        self.session.mount("http://", ContextAdapter(_plain_context(), self._recorder))
        self._mounted: set[str] = set()

    def _mount(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() != "https":
            return
        prefix = f"https://{parts.netloc.lower()}/"
        if prefix not in self._mounted:
            context = self._context or lab_aware_context(url)
            self.session.mount(prefix, ContextAdapter(context, self._recorder))
            self._mounted.add(prefix)

    def get(
        self,
        url: str,
        *,
        html_only: bool = True,
        may_follow: Callable[[str], bool] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """``GET url``, following redirects one by one while ``may_follow(next_url)`` allows.

        Raises:
            ConfigError: a bad URL. TLSError, Timeout, ConnectError, Broken: the transport.
            RemoteProtocolError: a redirect loop, too many redirects, a body over the limit.
        """
        return self._request("GET", url, None, html_only, may_follow, headers)

    def post(
        self,
        url: str,
        data: Mapping[str, str],
        *,
        may_follow: Callable[[str], bool] | None = None,
    ) -> Fetched:
        """``POST`` a form to ``url``; a 301/302/303 answer is followed with a ``GET``."""
        return self._request("POST", url, dict(data), True, may_follow, None)

    def _request(
        self,
        method: str,
        url: str,
        data: dict[str, str] | None,
        html_only: bool,
        may_follow: Callable[[str], bool] | None,
        headers: Mapping[str, str] | None,
    ) -> Fetched:
        current = check_url(url)
        seen = [current]
        hops: list[str] = []
        while True:
            response = self._send(method, current, data, headers)
            with response:
                status = response.status_code
                location = response.headers.get("Location", "")
                if status in _REDIRECTS and location:
                    target = urllib.parse.urljoin(current, location.strip())
                    try:
                        target = check_url(target)
                    except ConfigError as exc:
                        raise RemoteProtocolError(
                            f"{current} redirected to a bad URL: {exc}"
                        ) from exc
                    target = target.split("#", 1)[0]
                    if target in seen:
                        loop = " -> ".join([*seen[seen.index(target) :], target])
                        raise RemoteProtocolError(f"a redirect loop: {loop}")
                    if may_follow is not None and not may_follow(target):
                        return Fetched(
                            current, status, _ctype(response), None, target, hops, _raw(response)
                        )
                    if len(hops) >= self.max_redirects:
                        raise RemoteProtocolError(
                            f"more than {self.max_redirects} redirects from {url}"
                        )
                    hops.append(current)
                    seen.append(target)
                    if status in (301, 302, 303) and method == "POST":
                        method, data = "GET", None
                    current = target
                    continue
                content_type = _ctype(response)
                if html_only and not is_html(content_type):
                    return Fetched(current, status, content_type, None, "", hops, _raw(response))
                body = self._read(response, current)
                return Fetched(current, status, content_type, body, "", hops, _raw(response))

    def _send(
        self,
        method: str,
        url: str,
        data: dict[str, str] | None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self._mount(url)
        self._recorder.sent.clear()  # the adapter records what it sends; we keep none of it
        self.requests += 1
        try:
            return self.session.request(
                method,
                url,
                data=data,
                headers=dict(headers) if headers else None,
                allow_redirects=False,
                timeout=self.timeout,
                stream=True,
            )
        except requests.exceptions.RequestException as exc:
            raise map_requests_error(exc, url) from exc

    def _read(self, response: requests.Response, url: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise RemoteProtocolError(
                f"{url} is {int(declared)} bytes, over the limit of {self.max_bytes}: not read"
            )
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    raise RemoteProtocolError(
                        f"{url} is over the limit of {self.max_bytes} bytes: stopped reading"
                    )
                parts.append(chunk)
        except requests.exceptions.ChunkedEncodingError as exc:  # IncompleteRead and kin
            raise Broken(f"{url}: the body broke off ({error_reason(exc)})") from exc
        except requests.exceptions.RequestException as exc:
            raise map_requests_error(exc, url) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Broken(f"{url}: the body broke off ({error_reason(exc)})") from exc
        return b"".join(parts)

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _plain_context() -> ssl.SSLContext:
    from wirelab.net.tlsctx import client_context

    return client_context()  # never used for http://, but the adapter wants a verifying one


def _raw(response: requests.Response) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in response.raw.headers.items()]


def _ctype(response: requests.Response) -> str:
    return str(response.headers.get("Content-Type", ""))[:200]
