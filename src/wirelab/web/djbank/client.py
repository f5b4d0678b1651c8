"""A client of the Django payments app on a requests session: log in, read, pay, log out.

It behaves like the browser the app expects: it sends the form's ``csrfmiddlewaretoken``
with every POST and an ``Origin`` header naming the app's own origin (Django checks it on
HTTPS, falling back to ``Referer``; requests sends neither by itself). ``forge=True`` leaves
the token out or sends a wrong one, to show the refusal. The session, its limits, its HTTPS
(the given context only) and its errors are :class:`wirelab.web.session.AppSession`'s; pages
are read by :func:`wirelab.web.pages.read_page`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from wirelab.errors import TransportError
from wirelab.web.pages import DJANGO_TOKEN_FIELD, Page, Payment, read_page
from wirelab.web.session import DEFAULT_TIMEOUT, MAX_PAGE, AppSession

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE", "DjbankClient", "Page", "Payment", "Reply", "read_page"]

TOKEN_FIELD = DJANGO_TOKEN_FIELD


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
