"""The attacks of chapter 11, run in a real browser (Chromium through Playwright), with verdicts.

Each proof is what a victim does: log in to a bank through its login form, then visit the
attacker's page. What happened is then measured, not assumed:

* **XSS**: the victim follows the attacker's link into the bank, whose ``flash`` parameter
  carries ``<script src=".../attack.js">``; on the hardened bank, the same script is also
  planted as a memo of a payment from ``sam`` (stored XSS). The attack *worked* when the
  attacker's log shows the stolen cookie and the victim's list shows the $110 "Theft" payment
  the script made; it *failed* when the script never loaded (the log shows no ``script``
  event), no payment was made, and the payload shows as text.
* **CSRF**: the victim opens the attacker's "Win Big!" page, which submits a payment form to
  the bank. The attack *worked* when the victim's list gained the $330 "Dispute charge-back"
  payment to ``sam``; it *failed* when it did not (and the refusal page says why).

The expected outcome: both work on the insecure bank, both fail on the hardened one
(:attr:`Verdict.ok`). With ``screenshots``, each verdict's page is saved as
``<attack>-<bank>.png`` there (the chapter page shows them).
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wirelab.errors import ConfigError, Timeout, TransportError
from wirelab.web.bank.attacker import CSRF_FORM, THEFT, stored_payload
from wirelab.web.bank.urls import BankURLs

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = [
    "ATTACKS",
    "BANKS",
    "VICTIM",
    "Verdict",
    "login",
    "prove",
    "prove_all",
    "screenshot_dir",
]

ATTACKS = ("xss", "csrf")
BANKS = ("insecure", "hardened")
#: Who is attacked (the book's user), and the accomplice who plants stored XSS.
VICTIM = ("brandon", "atigdng")
ACCOMPLICE = ("sam", "xyzzy")
#: Seconds a page, a navigation or the attacker's log may take.
PAGE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Verdict:
    """What one attack did to one bank.

    Attributes:
        attack: ``xss`` or ``csrf``.
        bank: ``insecure`` or ``hardened``.
        worked: the attack did what it meant to (money moved, cookie stolen).
        detail: one line: what was measured.
        screenshot: the saved picture of the verdict, if any.
    """

    attack: str
    bank: str
    worked: bool
    detail: str
    screenshot: str | None = None

    @property
    def ok(self) -> bool:
        """The outcome the chapter teaches: works on the insecure bank, fails on the hardened."""
        return self.worked == (self.bank == "insecure")

    def line(self) -> str:
        """``xss on insecure: WORKED - ...``."""
        return (
            f"{self.attack} on {self.bank}: {'WORKED' if self.worked else 'FAILED'} - {self.detail}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "bank": self.bank,
            "worked": self.worked,
            "expected": self.bank == "insecure",
            "ok": self.ok,
            "detail": self.detail,
            "screenshot": self.screenshot,
        }


def _attacker_log(urls: BankURLs, since: int = 0) -> list[dict[str, Any]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{urls.attacker}/log?since={since}", timeout=PAGE_TIMEOUT) as reply:
            data = json.loads(reply.read(1 << 20))
    except OSError as exc:
        raise TransportError(f"cannot read the attacker's log at {urls.attacker}: {exc}") from exc
    if not isinstance(data, list):
        raise TransportError("the attacker's log is not a JSON list")
    return [event for event in data if isinstance(event, dict)]


def _last_event(urls: BankURLs) -> int:
    events = _attacker_log(urls)
    return max((int(e["id"]) for e in events), default=0)


def login(page: Page, bank_url: str, user: tuple[str, str] = VICTIM) -> None:
    """Log ``user`` in to the bank at ``bank_url`` through its login form, in ``page``.

    Raises:
        ConfigError: the browser did not end up on the bank's front page.
    """
    page.goto(f"{bank_url}/login")
    page.fill('input[name="username"]', user[0])
    page.fill('input[name="password"]', user[1])
    with page.expect_navigation():
        page.click('button[type="submit"]')
    if page.url.rstrip("/") != bank_url:
        raise ConfigError(f"the browser could not log in to {bank_url} (it is at {page.url})")


def _count(page: Page, bank_url: str, memo: str) -> int:
    """How many payments with ``memo`` the victim's list shows (read in another tab, so the
    page under test stays as it is)."""
    tab = page.context.new_page()
    try:
        tab.goto(f"{bank_url}/")
        return int(tab.locator("li.to i", has_text=memo).count())
    finally:
        tab.close()


#: Adds the verdict as a caption above the page (through the DOM and CSSOM, which a page's
#: Content-Security-Policy does not restrict for the browser's own automation).
_CAPTION = """([text, worked]) => {
  const box = document.createElement("div");
  box.textContent = text;
  Object.assign(box.style, {background: worked ? "#c00" : "#070", color: "white",
    font: "bold 15px sans-serif", padding: "8px", margin: "0 0 8px 0"});
  document.body.prepend(box);
}"""


def screenshot_dir(screenshots: Path) -> Path:
    """Make sure screenshots can be written to ``screenshots`` (before any browser starts).

    Raises:
        ConfigError: it cannot be made, or is not a writable directory.
    """
    try:
        screenshots.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write screenshots to {screenshots}: {exc.strerror}") from exc
    if not os.access(screenshots, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write screenshots to {screenshots}: Permission denied")
    return screenshots


def _shoot(verdict: Verdict, page: Page, screenshots: Path | None) -> Verdict:
    if screenshots is None:
        return verdict
    screenshot_dir(screenshots)
    path = screenshots / f"{verdict.attack}-{verdict.bank}.png"
    page.evaluate(_CAPTION, [verdict.line(), verdict.worked])
    page.screenshot(path=str(path), full_page=True)
    return replace(verdict, screenshot=str(path))


def _wait_for(urls: BankURLs, since: int, predicate: Any, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = _attacker_log(urls, since)
        if any(predicate(e) for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def _plant(urls: BankURLs, ssl_context: ssl.SSLContext | None, bank: str) -> None:
    """The accomplice pays the victim $1 with the script as the memo (stored XSS)."""
    from wirelab.web.bank.client import BankClient

    with BankClient(urls.bank(bank), ssl_context=ssl_context) as accomplice:
        if not accomplice.login(*ACCOMPLICE):
            raise ConfigError(f"the accomplice could not log in to the {bank} bank")
        result = accomplice.pay(VICTIM[0], 1, stored_payload(urls.attacker))
        if not result.accepted:
            raise ConfigError(f"the {bank} bank refused to store the payload: {result.complaint}")


def _xss(
    page: Page,
    urls: BankURLs,
    bank: str,
    screenshots: Path | None,
    ssl_context: ssl.SSLContext | None,
) -> Verdict:
    bank_url = urls.bank(bank)
    if bank == "hardened":
        _plant(urls, ssl_context, bank)
    before = _count(page, bank_url, THEFT["memo"])
    since = _last_event(urls)
    page.goto(f"{urls.attacker}/xss/{bank}")
    page.wait_for_url(lambda url: url.startswith(f"{bank_url}/?flash="))
    page.wait_for_load_state("load")
    # A <script src> is fetched before the page's load event, so by now the attacker's log
    # shows attack.js served if it ever will be. Only a script that did load has more to say
    # (what it stole and paid, in requests of its own): wait for that, and only then.
    events = _attacker_log(urls, since)
    if any(e["kind"] == "script" for e in events):
        events = _wait_for(
            urls,
            since,
            lambda e: e["kind"] == "stolen" and ("paid" in e or "failed" in e),
            PAGE_TIMEOUT,
        )
    shown_as_text = page.locator("text=<script src=").count() > 0
    after = _count(page, bank_url, THEFT["memo"])
    scripts = [e for e in events if e["kind"] == "script"]
    stolen = [e.get("cookie", "") for e in events if e["kind"] == "stolen" and "cookie" in e]
    worked = bool(scripts) and after > before
    if worked:
        page.goto(f"{bank_url}/")  # the list with the script's payment (not a reload: that
        # would run the reflected script, and pay, again)
    if worked:
        cookie = next((c for c in stolen if c), "(no cookie readable by script)")
        detail = (
            f"attack.js ran in the bank's origin: it sent home the cookie {cookie!r} and paid "
            f"{THEFT['account']} ${THEFT['dollars']} ({before} -> {after} such payments)"
        )
    else:
        detail = (
            f"the script never ran ({len(scripts)} loads of attack.js, "
            f"{after - before} payments made); the payload "
            + ("is shown as text" if shown_as_text else "is not on the page")
        )
    return _shoot(Verdict("xss", bank, worked, detail), page, screenshots)


def _csrf(page: Page, urls: BankURLs, bank: str, screenshots: Path | None) -> Verdict:
    bank_url = urls.bank(bank)
    memo = CSRF_FORM["memo"]
    before = _count(page, bank_url, memo)
    with page.expect_navigation(url=lambda url: url.startswith(bank_url)) as landing:
        page.goto(f"{urls.attacker}/csrf/{bank}")
    reply = landing.value
    status = reply.status if reply is not None else 0
    refusal = page.locator(".refusal").all_inner_texts()
    after = _count(page, bank_url, memo)
    worked = after > before
    if worked:
        detail = (
            f"the forged form paid {CSRF_FORM['account']} ${CSRF_FORM['dollars']} "
            f"({before} -> {after} such payments)"
        )
    else:
        why = refusal[0] if refusal else f"the bank answered {status}"
        detail = f"the bank refused the forged form ({status}): {why}"
    return _shoot(Verdict("csrf", bank, worked, detail), page, screenshots)


def prove(
    browser: Browser,
    urls: BankURLs,
    attack: str,
    bank: str,
    *,
    screenshots: Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Verdict:
    """Run one attack on one bank in a fresh browser context (its own cookies).

    ``ssl_context`` (the lab CA) is for the accomplice who plants stored XSS on HTTPS.

    Raises:
        ConfigError: an unknown attack or bank, or the victim cannot log in.
        Timeout: a page did not load in time.
        TransportError: the attacker's log cannot be read.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if attack not in ATTACKS:
        raise ConfigError(f"no attack called {attack!r} ({', '.join(ATTACKS)})")
    if bank not in BANKS:
        raise ConfigError(f"no bank called {bank!r} ({', '.join(BANKS)})")
    context = browser.new_context()
    try:
        context.set_default_timeout(PAGE_TIMEOUT * 1000)
        page = context.new_page()
        login(page, urls.bank(bank), VICTIM)
        if attack == "xss":
            return _xss(page, urls, bank, screenshots, ssl_context)
        return _csrf(page, urls, bank, screenshots)
    except PlaywrightTimeout as exc:
        raise Timeout(f"{attack} on {bank}: {str(exc).splitlines()[0]}") from exc
    except PlaywrightError as exc:
        raise TransportError(f"{attack} on {bank}: {str(exc).splitlines()[0]}") from exc
    finally:
        context.close()


def prove_all(
    browser: Browser,
    urls: BankURLs,
    *,
    attacks: Iterable[str] = ATTACKS,
    banks: Iterable[str] = BANKS,
    screenshots: Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> list[Verdict]:
    """Every attack on every bank, in order."""
    if screenshots is not None:
        screenshot_dir(screenshots)
    return [
        prove(browser, urls, attack, bank, screenshots=screenshots, ssl_context=ssl_context)
        for attack in attacks
        for bank in banks
    ]
