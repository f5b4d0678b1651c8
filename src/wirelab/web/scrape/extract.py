"""Getting data out of HTML, two ways that must agree: BeautifulSoup, and lxml with CSS selectors.

The rows are payments as the book's payments page lists them (and as the test site's account
page does): ``<li class="to">$125 ... <b>psf</b> ... <i>memo</i></li>``, ``class="from"`` for
money received. :func:`payments` picks a parser; both give the same :class:`Row` list (a test
proves it on every page we have). BeautifulSoup is given a parser by name (the book's call
without one warned and could pick a different one per machine).

The crawlers' side is here too: :func:`links` (every ``<a href>``, made absolute against the
document's base) and :func:`forms` (what the JavaScript crawler may submit).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any, Literal

from wirelab.errors import RemoteProtocolError

__all__ = ["PARSERS", "FormInfo", "Row", "forms", "links", "payments", "title"]

Parser = Literal["bs4", "lxml"]
#: The two extraction back ends.
PARSERS: tuple[Parser, ...] = ("bs4", "lxml")
_DOLLARS = re.compile(r"\$\s*([0-9][0-9,]{0,14})")


@dataclass(frozen=True)
class Row:
    """One payment on the page: ``to`` or ``from`` whom, how many dollars, and the memo."""

    direction: str
    dollars: int
    account: str
    memo: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _dollars(text: str) -> int:
    found = _DOLLARS.search(text)
    if found is None:
        raise RemoteProtocolError(f"a payment row without a dollar amount: {text.strip()[:80]!r}")
    return int(found.group(1).replace(",", ""))


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def payments(html: str, parser: Parser = "bs4") -> list[Row]:
    """The payment rows of a page (``li.to`` and ``li.from``, in page order).

    Raises:
        ConfigError: an unknown parser. RemoteProtocolError: a row without an amount.
    """
    if parser == "bs4":
        return _payments_bs4(html)
    if parser == "lxml":
        return _payments_lxml(html)
    from wirelab.errors import ConfigError

    raise ConfigError(f"unknown parser {parser!r}: choose bs4 or lxml")


def _payments_bs4(html: str) -> list[Row]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    rows = []
    for li in soup.select("li.to, li.from"):
        classes: list[str] = list(li.get("class") or [])
        direction = "to" if "to" in classes else "from"
        account = li.find("b")
        memo = li.find("i")
        rows.append(
            Row(
                direction,
                _dollars(li.get_text(" ")),
                _clean(account.get_text() if account else ""),
                _clean(memo.get_text() if memo else ""),
            )
        )
    return rows


def _payments_lxml(html: str) -> list[Row]:
    root = _lxml_root(html)
    if root is None:
        return []
    rows = []
    for li in root.cssselect("li.to, li.from"):
        classes = (li.get("class") or "").split()
        direction = "to" if "to" in classes else "from"
        account = li.cssselect("b")
        memo = li.cssselect("i")
        rows.append(
            Row(
                direction,
                _dollars(li.text_content()),
                _clean(account[0].text_content() if account else ""),
                _clean(memo[0].text_content() if memo else ""),
            )
        )
    return rows


def _lxml_root(html: str) -> Any:
    """The parsed document, or ``None`` for an empty one (the book's crawler crashed there)."""
    import lxml.etree  # type: ignore[import-untyped]
    import lxml.html  # type: ignore[import-untyped]

    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None


def title(html: str) -> str:
    """The document's ``<title>`` text (``""`` if none)."""
    root = _lxml_root(html)
    if root is None:
        return ""
    found = root.cssselect("title")
    return _clean(found[0].text_content())[:200] if found else ""


def links(html: str, base_url: str) -> list[str]:
    """Every ``<a href>`` of the page made absolute (against ``<base href>`` if present), in
    page order, fragments kept (:func:`wirelab.web.scrape.urls.canonical` drops them)."""
    root = _lxml_root(html)
    if root is None:
        return []
    base = base_url
    for element in root.cssselect("base[href]"):
        base = urllib.parse.urljoin(base_url, element.get("href", "").strip())
        break
    found = []
    for anchor in root.cssselect("a[href]"):
        href = (anchor.get("href") or "").strip()
        if href:
            found.append(urllib.parse.urljoin(base, href))
    return found


@dataclass(frozen=True)
class FormInfo:
    """A form on a page: its method, absolute action, and whether it asks for a password."""

    index: int
    method: str
    action: str
    has_password: bool


def forms(html: str, base_url: str) -> list[FormInfo]:
    """The page's forms, in page order."""
    root = _lxml_root(html)
    if root is None:
        return []
    found = []
    for index, form in enumerate(root.cssselect("form")):
        method = (form.get("method") or "get").strip().lower()
        action = urllib.parse.urljoin(base_url, (form.get("action") or "").strip())
        has_password = bool(form.cssselect('input[type="password" i]'))
        found.append(FormInfo(index, method, action, has_password))
    return found
