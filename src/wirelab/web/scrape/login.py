"""The login-aware scraper (F64-F66): log in where the page asks, then extract the rows.

With requests (:func:`scrape`): fetch the URL; if the answer is a login form (a form with a
password field), post the credentials into that form's own fields (its hidden fields, such as
a CSRF token, sent back as they were), follow the redirect on the same session (its cookie
is the login), fetch the URL again if the login landed elsewhere, and extract. The book's
version posted to a hard-coded ``/login`` and checked with ``assert``; here a refused login,
a page that is not HTML or an error status is one clear error.

With a real browser (:func:`scrape_in_browser`, the book's Selenium path on Playwright):
the same steps typed into the form of a headless Chromium, then the page's DOM is extracted.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wirelab.errors import ConfigError, ProtocolError, RemoteProtocolError
from wirelab.web.scrape.extract import Parser, Row, payments
from wirelab.web.scrape.fetch import Fetched, Fetcher
from wirelab.web.scrape.urls import canonical, check_url

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["LoginForm", "LoginRefused", "ScrapeResult", "login_form", "scrape", "scrape_in_browser"]


class LoginRefused(ProtocolError):
    """The site answered the login with its login form again (wrong user name or password)."""


@dataclass(frozen=True)
class LoginForm:
    """A login form found on a page: where it posts and what it sends."""

    action: str
    user_field: str
    password_field: str
    hidden: dict[str, str] = field(default_factory=dict)

    def data(self, user: str, password: str) -> dict[str, str]:
        """The form's fields filled in."""
        return {**self.hidden, self.user_field: user, self.password_field: password}


@dataclass
class ScrapeResult:
    """What a scrape found: the page it read, whether it logged in, and the rows."""

    url: str
    logged_in: bool
    parser: str
    via: str
    rows: list[Row]

    @property
    def total_paid(self) -> int:
        """Dollars paid (rows ``to``), as the book's scraper totalled them."""
        return sum(r.dollars for r in self.rows if r.direction == "to")

    @property
    def total_received(self) -> int:
        """Dollars received (rows ``from``)."""
        return sum(r.dollars for r in self.rows if r.direction == "from")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "url": self.url,
            "logged_in": self.logged_in,
            "parser": self.parser,
            "via": self.via,
            "rows": [r.to_json() for r in self.rows],
            "total_paid": self.total_paid,
            "total_received": self.total_received,
        }


def login_form(html: str, base_url: str) -> LoginForm | None:
    """The first form with a password field on the page, or ``None``."""
    from wirelab.web.scrape.extract import _lxml_root

    root = _lxml_root(html)
    if root is None:
        return None
    for form in root.cssselect("form"):
        secret = form.cssselect('input[type="password" i][name]')
        if not secret:
            continue
        user_field = ""
        hidden: dict[str, str] = {}
        for element in form.cssselect("input[name]"):
            kind = (element.get("type") or "text").strip().lower()
            name = element.get("name") or ""
            if kind == "hidden":
                hidden[name] = element.get("value") or ""
            elif kind in ("text", "email") and not user_field:
                user_field = name
        if not user_field:
            continue
        action = urllib.parse.urljoin(base_url, (form.get("action") or "").strip())
        return LoginForm(action, user_field, secret[0].get("name") or "", hidden)
    return None


def _html_page(fetched: Fetched, asked: str) -> str:
    if fetched.body is None:
        shown = fetched.content_type.split(";")[0] or "no Content-Type"
        raise RemoteProtocolError(f"{fetched.url} is not an HTML page ({shown})")
    return fetched.text()


def scrape(
    url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    parser: Parser = "bs4",
    fetcher: Fetcher | None = None,
) -> ScrapeResult:
    """Fetch ``url`` (logging in on the way if it asks) and extract its payment rows.

    Raises:
        ConfigError: a bad URL or parser, or a login is needed and no credentials were given.
        LoginRefused: the credentials were refused.
        RemoteProtocolError: not HTML, an error status, a redirect loop, a page too large.
        TransportError: the network (Timeout, ConnectError, TLSError, Broken ...).
    """
    if parser not in ("bs4", "lxml"):
        raise ConfigError(f"unknown parser {parser!r}: choose bs4 or lxml")
    url = check_url(url)
    own = fetcher is None
    session = fetcher or Fetcher()
    try:
        fetched = session.get(url)
        text = _html_page(fetched, url)
        form = login_form(text, fetched.url)
        logged_in = False
        if form is not None:
            if user is None or password is None:
                raise ConfigError(f"{fetched.url} asks for a login: give --user and --password")
            answer = session.post(form.action, form.data(user, password))
            text = _html_page(answer, form.action)
            if login_form(text, answer.url) is not None:
                raise LoginRefused(
                    f"{form.action} refused the login of {user!r} (status {answer.status})",
                    code=answer.status,
                )
            logged_in = True
            fetched = answer
            if canonical(answer.url) != canonical(url):
                fetched = session.get(url)
                text = _html_page(fetched, url)
        if fetched.status >= 400:
            raise RemoteProtocolError(f"{fetched.url} answered {fetched.status}")
        rows = payments(text, parser)
        return ScrapeResult(fetched.url, logged_in, parser, "requests", rows)
    finally:
        if own:
            session.close()


def scrape_in_browser(
    url: str,
    browser: Browser,
    *,
    user: str | None = None,
    password: str | None = None,
    parser: Parser = "bs4",
    timeout: float = 10.0,
) -> ScrapeResult:
    """The same scrape typed into a real browser's login form (the book's Selenium path).

    Raises the same errors as :func:`scrape`.
    """
    from playwright.sync_api import Error as PlaywrightError

    url = check_url(url)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(timeout * 1000)
        try:
            response = page.goto(url)
            _browser_status(response, url)
            logged_in = False
            secret = page.locator('form input[type="password" i]')
            if secret.count():
                if user is None or password is None:
                    raise ConfigError(f"{page.url} asks for a login: give --user and --password")
                form = page.locator("form", has=page.locator('input[type="password" i]')).first
                form.locator('input[type="text" i], input[type="email" i]').first.fill(user)
                form.locator('input[type="password" i]').first.fill(password)
                with page.expect_navigation():
                    form.evaluate("f => f.requestSubmit()")
                if page.locator('form input[type="password" i]').count():
                    raise LoginRefused(f"{page.url} refused the login of {user!r}")
                logged_in = True
                if canonical(page.url) != canonical(url):
                    _browser_status(page.goto(url), url)
            page.wait_for_load_state("load")
            rows = payments(page.content(), parser)
            return ScrapeResult(page.url, logged_in, parser, "browser", rows)
        except PlaywrightError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RemoteProtocolError(f"the browser failed on {url}: {first[:200]}") from exc
    finally:
        context.close()


def _browser_status(response: Any, url: str) -> None:
    if response is None:
        return
    if response.status >= 400:
        raise RemoteProtocolError(f"{url} answered {response.status}")
    kind = str(response.headers.get("content-type", ""))
    from wirelab.web.scrape.fetch import is_html

    if not is_html(kind):
        raise RemoteProtocolError(f"{url} is not an HTML page ({kind.split(';')[0] or 'none'})")
