"""A client of the payments apps (either one), on a requests session: log in, list, pay.

What the book's ``mscrape.py`` does to log in (``POST /login``, follow the redirect to ``/``),
plus paying through the form (with its CSRF token when the page has one) and reading the
payments list (``li.to``/``li.from``, read by :func:`wirelab.web.pages.read_page`). The
session, its limits, its HTTPS (the given context only) and its errors are
:class:`wirelab.web.session.AppSession`'s.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from wirelab.errors import ConfigError
from wirelab.web.pages import Payment, read_page
from wirelab.web.session import DEFAULT_TIMEOUT, MAX_PAGE, AppSession

__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE", "TOKEN_FIELD", "BankClient", "PayResult", "Payment"]

#: The hardened bank's CSRF form field.
TOKEN_FIELD = "csrf_token"  # noqa: S105 - a form field name
_COMPLAINT = re.compile(r'<span class="complaint">(.*?)</span>', re.S)


class _Form(enum.Enum):
    TOKEN = "the form's own token"  # noqa: S105 - a sentinel, not a secret


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
        return read_page(self.request("GET", "pay").text, TOKEN_FIELD).token

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

    def payments(self) -> list[Payment]:
        """The logged-in user's payments, as the page lists them."""
        return read_page(self.index_html(), TOKEN_FIELD).payments
