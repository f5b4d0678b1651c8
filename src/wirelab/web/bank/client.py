"""A client of the payments apps (either one), on a requests session: log in, list, pay.

What the book's ``mscrape.py`` does to log in (``POST /login``, follow the redirect to ``/``),
plus paying through the form (with its CSRF token when the page has one) and reading the
payments list (``li.to``/``li.from``, as the scraper does). HTTPS is verified with the given
context only (the lab CA): requests' own bundle and ``verify=False`` never come into it.
Transport failures become :mod:`wirelab.errors` exceptions at this seam.
"""

from __future__ import annotations

import enum
import re
import ssl
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from wirelab.errors import ConfigError, ConnectError, Timeout, TLSError, TransportError

__all__ = ["BankClient", "Listed", "PayResult"]

DEFAULT_TIMEOUT = 10.0
#: The largest page read (bytes): the apps' pages are a few kilobytes.
MAX_PAGE = 1 << 20
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]*)"')
_COMPLAINT = re.compile(r'<span class="complaint">(.*?)</span>', re.S)


class _ContextAdapter(HTTPAdapter):
    """HTTPS through our verifying context alone (no CA bundle, no ``verify=False``)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigError("HTTPS needs a verifying context (CERT_REQUIRED, host names)")
        self._ssl_context = ssl_context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class _Form(enum.Enum):
    TOKEN = "the form's own token"  # noqa: S105 - a sentinel, not a secret


@dataclass(frozen=True)
class Listed:
    """One line of the payments list: ``$dollars to/from other for: memo``."""

    direction: str
    dollars: int
    other: str
    memo: str


@dataclass(frozen=True)
class PayResult:
    """What ``POST /pay`` answered: accepted (a redirect to ``/``) or not, and why."""

    status: int
    accepted: bool
    complaint: str


class BankClient:
    """A logged-out browser-less visitor of the bank at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, no $REQUESTS_CA_BUNDLE
        if ssl_context is not None:
            self.session.mount("https://", _ContextAdapter(ssl_context))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; transport errors mapped to ours."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        url = urljoin(self.base_url, path)
        try:
            reply = self.session.request(method, url, stream=True, **kwargs)
            try:
                body = reply.raw.read(MAX_PAGE + 1, decode_content=True)
            finally:
                reply.close()
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

    def login(self, username: str, password: str) -> bool:
        """``POST /login``; True when the app redirected to ``/`` (logged in)."""
        reply = self.request("POST", "login", data={"username": username, "password": password})
        return reply.status_code in (302, 303) and reply.headers.get("Location", "") in (
            "/",
            self.base_url,
        )

    def csrf_token(self) -> str | None:
        """The token the payment form carries (``None``: the form has none, or no login)."""
        found = _TOKEN.search(self.request("GET", "pay").text)
        return found.group(1) if found else None

    def pay(
        self,
        account: str,
        dollars: str | int,
        memo: str,
        *,
        csrf_token: str | Literal[_Form.TOKEN] | None = _Form.TOKEN,
    ) -> PayResult:
        """``POST /pay`` with the form's own token (default), this one, or none (``None``)."""
        fields = {"account": account, "dollars": str(dollars), "memo": memo}
        token = self.csrf_token() if csrf_token is _Form.TOKEN else csrf_token
        if token is not None:
            fields["csrf_token"] = token
        reply = self.request("POST", "pay", data=fields)
        accepted = reply.status_code in (302, 303) and not reply.headers.get(
            "Location", ""
        ).endswith("/login")
        found = _COMPLAINT.search(reply.text)
        return PayResult(reply.status_code, accepted, found.group(1).strip() if found else "")

    def index_html(self, path: str = "") -> str:
        """The front page's HTML (raises :class:`ConfigError` when not logged in)."""
        reply = self.request("GET", path)
        if reply.status_code != 200:
            raise ConfigError(f"not logged in (the front page answered {reply.status_code})")
        return reply.text

    def payments(self) -> list[Listed]:
        """The logged-in user's payments, as the page lists them."""
        import lxml.html  # type: ignore[import-untyped]

        root = lxml.html.document_fromstring(self.index_html())
        listed = []
        for li in root.cssselect("li.to, li.from"):
            words = (li.text or "").split()
            bold, italic = li.find("b"), li.find("i")
            listed.append(
                Listed(
                    li.get("class", ""),
                    int(words[0].lstrip("$")) if words else 0,
                    bold.text_content() if bold is not None else "",
                    italic.text_content() if italic is not None else "",
                )
            )
        return listed
