"""One browser-less visitor of a chapter 11 web app, on a requests session: the shared seam.

The Flask bank's client (:mod:`wirelab.web.bank.client`) and the Django bank's
(:mod:`wirelab.web.djbank.client`) are the same kind of visitor: a cookie-keeping session on
one app, redirects not followed (the tests look at each one), every page read up to
:data:`MAX_PAGE` bytes, HTTPS verified with the given context alone through
:class:`wirelab.http.client.ContextAdapter` (no CA bundle from the environment, no
``verify=False``), and transport failures turned into :mod:`wirelab.errors` exceptions here.
They differ only in the forms they fill in, which stay in their own modules.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from wirelab.errors import ConfigError, ConnectError, Timeout, TLSError, TransportError
from wirelab.http.client import ContextAdapter, Recorder

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE", "AppSession"]

DEFAULT_TIMEOUT = 10.0
#: The largest page read (bytes): the apps' pages are a few kilobytes.
MAX_PAGE = 1 << 20


class AppSession:
    """A visitor of the app at ``base_url``: one session, bounded pages, our errors."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, no $REQUESTS_CA_BUNDLE
        # The adapter records what it sends (for ``wirelab http``'s -v); nobody reads it here,
        # so each request forgets it.
        self._recorder = Recorder()
        if ssl_context is not None:
            self.session.mount("https://", ContextAdapter(ssl_context, self._recorder))

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def __enter__(self) -> AppSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, redirects not followed, the body read whole (at most ``MAX_PAGE``)."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        url = urljoin(self.base_url, path)
        try:
            reply = self.session.request(method, url, stream=True, **kwargs)
            try:
                body = reply.raw.read(MAX_PAGE + 1, decode_content=True)
            finally:
                reply.close()
                self._recorder.sent.clear()
        except requests.exceptions.SSLError as exc:
            raise TLSError(f"TLS with {url} failed: {exc}") from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise Timeout(f"no connection to {url} within {self.timeout:g} s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectError(f"cannot reach {url}: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise Timeout(f"{url} did not answer within {self.timeout:g} s") from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{method} {url} failed: {exc}") from exc
        if len(body) > MAX_PAGE:
            raise TransportError(f"{url} sent more than {MAX_PAGE} bytes")
        reply._content = body
        return reply
