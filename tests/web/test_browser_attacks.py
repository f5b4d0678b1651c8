"""The attacks of chapter 11 in a real browser (Debian's Chromium through Playwright).

Each test runs one proof (:func:`wirelab.web.bank.proofs.prove`: log in through the bank's
form, visit the attacker's page) and then checks its outcome independently, with a requests
client over the lab's endpoints: the payment the attack wanted is, or is not, in the victim's
list. Screenshots go to a temporary directory; with ``WIRELAB_UPDATE_SCREENSHOTS=1`` they go
next to the chapter page (``docs/chapters/11-web/``), which is how the committed ones are made
(or ``wirelab web bank attack all --screenshots docs/chapters/11-web``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from wirelab.lab.state import LabState
from wirelab.web.bank.attacker import CSRF_FORM, THEFT
from wirelab.web.bank.client import BankClient
from wirelab.web.bank.proofs import VICTIM, Verdict, login, prove
from wirelab.web.bank.urls import BankURLs

if TYPE_CHECKING:
    from playwright.sync_api import Browser

DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "chapters" / "11-web"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("WIRELAB_UPDATE_SCREENSHOTS") == "1":
        return DOCS_SHOTS
    return tmp_path


def _run(
    browser: Browser, lab: LabState, attack: str, bank: str, shots: Path, memo: str
) -> tuple[Verdict, int, int]:
    urls = BankURLs.from_lab(lab)
    ctx = lab.ssl_context() if bank == "hardened" else None
    with BankClient(urls.bank(bank), ssl_context=ctx) as victim:
        assert victim.login(*VICTIM)
        before = sum(p.memo == memo for p in victim.payments())
        verdict = prove(
            browser, urls, attack, bank, screenshots=shots, ssl_context=lab.ssl_context()
        )
        after = sum(p.memo == memo for p in victim.payments())
    assert verdict.screenshot is not None
    assert Path(verdict.screenshot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(verdict.screenshot).name == f"{attack}-{bank}.png"
    return verdict, before, after


def test_browser_xss_runs_on_the_insecure_bank(
    browser: Browser, wirelab_lab: LabState, shots: Path
) -> None:
    verdict, before, after = _run(browser, wirelab_lab, "xss", "insecure", shots, THEFT["memo"])
    assert verdict.worked and verdict.ok, verdict.line()
    assert after == before + 1  # the script's payment, seen by an independent client
    assert "username=brandon" in verdict.detail  # the cookie the script sent home


def test_browser_xss_is_inert_on_the_hardened_bank(
    browser: Browser, wirelab_lab: LabState, shots: Path
) -> None:
    verdict, before, after = _run(browser, wirelab_lab, "xss", "hardened", shots, THEFT["memo"])
    assert not verdict.worked and verdict.ok, verdict.line()
    assert after == before
    assert "0 loads of attack.js" in verdict.detail and "shown as text" in verdict.detail


def test_browser_csrf_pays_on_the_insecure_bank(
    browser: Browser, wirelab_lab: LabState, shots: Path
) -> None:
    verdict, before, after = _run(
        browser, wirelab_lab, "csrf", "insecure", shots, CSRF_FORM["memo"]
    )
    assert verdict.worked and verdict.ok, verdict.line()
    assert after == before + 1


def test_browser_csrf_is_refused_by_the_hardened_bank(
    browser: Browser, wirelab_lab: LabState, shots: Path
) -> None:
    verdict, before, after = _run(
        browser, wirelab_lab, "csrf", "hardened", shots, CSRF_FORM["memo"]
    )
    assert not verdict.worked and verdict.ok, verdict.line()
    assert after == before
    assert "(403)" in verdict.detail and "CSRF token" in verdict.detail


def test_browser_same_site_csrf_carries_the_session_and_the_token_refuses_it(
    browser: Browser, wirelab_lab: LabState
) -> None:
    # The attacker's page served from https://127.0.0.1:9 (fulfilled by the browser's own
    # routing, so nothing listens there): same site as the hardened bank, scheme included, so
    # the SameSite=Lax session goes along with the forged form. Only the token stops it.
    import urllib.request

    urls = BankURLs.from_lab(wirelab_lab)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{urls.attacker}/csrf/hardened", timeout=10) as reply:
        page_html = reply.read().decode()
    context = browser.new_context()
    try:
        context.set_default_timeout(15_000)
        context.route(
            "https://127.0.0.1:9/**",
            lambda route: route.fulfill(status=200, content_type="text/html", body=page_html),
        )
        page = context.new_page()
        login(page, urls.hardened)
        with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as victim:
            assert victim.login(*VICTIM)
            before = sum(p.memo == CSRF_FORM["memo"] for p in victim.payments())
            with page.expect_navigation(url=lambda url: url.startswith(urls.hardened)) as nav:
                page.goto("https://127.0.0.1:9/csrf")
            assert nav.value is not None and nav.value.status == 403
            refusal = page.locator(".refusal").inner_text()
            assert "CSRF token is missing or wrong" in refusal
            assert "Your browser sent your session cookie with it." in refusal
            after = sum(p.memo == CSRF_FORM["memo"] for p in victim.payments())
        assert after == before
    finally:
        context.close()
