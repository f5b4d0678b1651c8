"""A client of the Django payments app on a requests session: log in, read, pay, log out.

It behaves like the browser the app expects: it sends the form's ``csrfmiddlewaretoken``
with every POST and an ``Origin`` header naming the app's own origin (Django checks it on
HTTPS, falling back to ``Referer``; requests sends neither by itself). ``forge=True`` leaves
the token out or sends a wrong one, to show the refusal. HTTPS is verified with the given
context alone (the lab CA), never requests' bundle or ``verify=False``; transport failures
become :mod:`wirelab.errors` exceptions here. Pages are read with :mod:`html.parser`, bounded.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from wirelab.errors import ConfigError, ConnectError, Timeout, TLSError, TransportError

__all__ = ["DjbankClient", "Page", "Payment", "Reply"]

DEFAULT_TIMEOUT = 10.0
#: The largest page read (bytes): the app's pages are a few kilobytes.
MAX_PAGE = 1 << 20
TOKEN_FIELD = "csrfmiddlewaretoken"  # noqa: S105 - a form field name


class _VerifyingAdapter(HTTPAdapter):
    """HTTPS through one verifying context (no CA bundle from the environment)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise ConfigError("HTTPS needs a verifying context (CERT_REQUIRED, host names)")
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


@dataclass(frozen=True)
class Payment:
    """One line of the payments list: ``$dollars to/from account for: memo``."""

    direction: str
    dollars: int
    account: str
    memo: str


@dataclass
class Page:
    """What the app's pages show: messages, payments, form errors, the CSRF token."""

    messages: list[str] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    token: str | None = None
    title: str = ""


class _Reader(HTMLParser):
    """Collects the parts of :class:`Page` from one of the app's pages."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[tuple[str, str]] = []  # (what, text so far) of open elements
        self._li_class = ""
        self._li_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        classes = attr.get("class", "").split()
        if tag == "input" and attr.get("name") == TOKEN_FIELD and self.page.token is None:
            self.page.token = attr.get("value", "")
        elif tag == "li" and ("message" in classes or "to" in classes or "from" in classes):
            self._li_class = "message" if "message" in classes else classes[0]
            self._li_text = []
        elif tag == "ul" and "errorlist" in classes:
            self._stack.append(("errors", ""))
        elif tag == "title":
            self._stack.append(("title", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._li_class:
            text = " ".join("".join(self._li_text).split())
            if self._li_class == "message":
                self.page.messages.append(text)
            else:
                self._payment(self._li_class, text)
            self._li_class = ""
        elif tag == "li" and self._stack and self._stack[-1][0] == "errors":
            self.page.errors.append(" ".join(self._stack[-1][1].split()))
            self._stack[-1] = ("errors", "")
        elif tag == "ul" and self._stack and self._stack[-1][0] == "errors":
            self._stack.pop()
        elif tag == "title" and self._stack and self._stack[-1][0] == "title":
            self.page.title = " ".join(self._stack.pop()[1].split())

    def handle_data(self, data: str) -> None:
        if self._li_class:
            self._li_text.append(data)
        elif self._stack:
            what, text = self._stack[-1]
            self._stack[-1] = (what, text + data)

    def _payment(self, direction: str, text: str) -> None:
        # "$125 to psf for: Registration for PyCon"
        amount, _, rest = text.partition(f" {direction} ")
        account, _, memo = rest.partition(" for: ")
        try:
            dollars = int(amount.lstrip("$"))
        except ValueError:
            return
        self.page.payments.append(Payment(direction, dollars, account.strip(), memo.strip()))


def read_page(html: str) -> Page:
    """The messages, payments, form errors and CSRF token of one of the app's pages."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


@dataclass(frozen=True)
class Reply:
    """What a POST answered: its status, where it redirected, and the page it showed."""

    status: int
    location: str
    page: Page

    @property
    def accepted(self) -> bool:
        """A redirect to the payments page: the payment was made."""
        return self.status in (302, 303) and urlsplit(self.location).path == "/"


class DjbankClient:
    """A visitor of the app at ``base_url`` (``https://www.example.com:10503/``)."""

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
        self.base_url = f"{parts.scheme}://{parts.netloc}/"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, no $REQUESTS_CA_BUNDLE
        if ssl_context is not None:
            self.session.mount("https://", _VerifyingAdapter(ssl_context))

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def __enter__(self) -> DjbankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, redirects not followed; transport errors mapped to ours."""
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

    def get(self, path: str) -> Page:
        """GET ``path`` and read the page (a redirect is not followed)."""
        return read_page(self.request("GET", path).text)

    def post(self, path: str, fields: dict[str, str], *, forge: str | None = None) -> Reply:
        """POST the form at ``path`` with its CSRF token (or ``forge``: ``""`` sends none)."""
        data = dict(fields)
        if forge is None:
            token = self.get(path).token
            if token is None:
                raise TransportError(f"{path} shows no form with a CSRF token")
            data[TOKEN_FIELD] = token
        elif forge:
            data[TOKEN_FIELD] = forge
        reply = self.request("POST", path, data=data, headers={"Origin": self.origin})
        return Reply(reply.status_code, reply.headers.get("Location", ""), read_page(reply.text))

    def login(self, username: str, password: str) -> bool:
        """Log in through Django's login form; True when it let us in."""
        reply = self.post("accounts/login/", {"username": username, "password": password})
        return reply.accepted

    def logout(self) -> bool:
        """Log out (a POST with the token, as the page's button does)."""
        token = self.get("/").token  # the header's log-out form
        if token is None:
            return False
        answer = self.request(
            "POST", "logout/", data={TOKEN_FIELD: token}, headers={"Origin": self.origin}
        )
        return answer.status_code in (302, 303)

    def payments(self) -> Page:
        """The payments page (empty when not logged in: it redirects to the login)."""
        return self.get("/")

    def pay(self, credit: str, dollars: str | int, memo: str, *, forge: str | None = None) -> Reply:
        """Make a payment through the form; ``forge`` as for :meth:`post`."""
        return self.post(
            "pay/", {"credit": credit, "dollars": str(dollars), "memo": memo}, forge=forge
        )
