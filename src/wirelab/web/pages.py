"""Reading the payments apps' pages: one parser for the Flask banks, Django's and the scrapers'.

Every payments app of chapter 11 lists payments the book's way, ``<li class="to">$125 to
<b>psf</b> for: <i>memo</i></li>`` (or ``class="from"``), and hides its CSRF token in a form
field. :func:`read_page` reads those, the messages (``li.message``), Django's form errors
(``ul.errorlist``) and the title with :mod:`html.parser`, from any text (a page that is not
one of ours reads as an empty :class:`Page`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["DJANGO_TOKEN_FIELD", "Page", "Payment", "read_page"]

#: Django's CSRF form field (the Flask hardened bank's is ``csrf_token``).
DJANGO_TOKEN_FIELD = "csrfmiddlewaretoken"  # noqa: S105 - a form field name


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

    def __init__(self, token_field: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._token_field = token_field
        self._stack: list[tuple[str, str]] = []  # (what, text so far) of open elements
        self._li_class = ""
        self._li_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        classes = attr.get("class", "").split()
        if tag == "input" and attr.get("name") == self._token_field and self.page.token is None:
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


def read_page(html: str, token_field: str = DJANGO_TOKEN_FIELD) -> Page:
    """The messages, payments, form errors and CSRF token (the hidden ``token_field``) of a
    payments app's page."""
    reader = _Reader(token_field)
    reader.feed(html)
    reader.close()
    return reader.page
