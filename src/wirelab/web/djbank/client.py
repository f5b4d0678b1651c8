"""A client of the Django payments app on a requests session: log in, read, pay, log out.

It behaves like the browser the app expects: it sends the form's ``csrfmiddlewaretoken``
with every POST and an ``Origin`` header naming the app's own origin (Django checks it on
HTTPS, falling back to ``Referer``; requests sends neither by itself). ``forge=True`` leaves
the token out or sends a wrong one, to show the refusal. The session, its limits, its HTTPS
(the given context only) and its errors are :class:`wirelab.web.session.AppSession`'s. Pages
are read with :mod:`html.parser`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from wirelab.errors import TransportError
from wirelab.web.session import DEFAULT_TIMEOUT, MAX_PAGE, AppSession

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE", "DjbankClient", "Page", "Payment", "Reply", "read_page"]

TOKEN_FIELD = "csrfmiddlewaretoken"  # noqa: S105 - a form field name


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


class DjbankClient(AppSession):
    """A visitor of the app at ``base_url`` (``https://www.example.com:10503/``)."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(base_url, ssl_context=ssl_context, timeout=timeout)
        self.base_url = self.origin + "/"  # the app's paths are absolute

    def __enter__(self) -> DjbankClient:
        return self

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
