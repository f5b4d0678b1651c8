"""A client of the payments apps (either one), on a requests session: log in, list, pay.

What the book's ``mscrape.py`` does to log in (``POST /login``, follow the redirect to ``/``),
plus paying through the form (with its CSRF token when the page has one) and reading the
payments list (``li.to``/``li.from``, as the scraper does). The session, its limits, its
HTTPS (the given context only) and its errors are :class:`wirelab.web.session.AppSession`'s.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from wirelab.errors import ConfigError
from wirelab.web.session import DEFAULT_TIMEOUT, MAX_PAGE, AppSession

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE", "BankClient", "Listed", "PayResult"]

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]*)"')
_COMPLAINT = re.compile(r'<span class="complaint">(.*?)</span>', re.S)


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


class BankClient(AppSession):
    """A logged-out browser-less visitor of the bank at ``base_url``."""

    def __enter__(self) -> BankClient:
        return self

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
