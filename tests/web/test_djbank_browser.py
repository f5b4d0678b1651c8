"""The Django payments app in a real browser (Debian's headless Chromium, via Playwright).

What only a browser can show: the ``__Host-`` Secure cookies are accepted and sent back, the
pages and the admin work under the Content-Security-Policy, a stored script does not run,
and a form on another site that posts to ``/pay/`` moves no money. Skipped with the reason
where Chromium cannot run; under ``WIRELAB_REQUIRE_SERVICES=1`` that is a failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from wirelab.lab.state import ServiceView

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def site(lab_djbank: ServiceView, browser: Browser) -> tuple[str, Browser]:
    """The session lab's djbank and this module's Chromium (which trusts the lab CA)."""
    ep = lab_djbank.endpoint("https")
    return f"https://{ep.address}:{ep.port}", browser


def login(page: Page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/accounts/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_login_pay_and_the_message_once_in_a_browser(site: tuple[str, Browser]) -> None:
    base, chromium = site
    context = chromium.new_context()
    try:
        page = context.new_page()
        login(page, base, "brandon", "atigdng")
        assert page.text_content("h1") == "Welcome, brandon"
        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["__Host-djbank-session"]
        assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""  # no cookie is readable by a script
        page.click("text=Make payment")
        page.fill("#id_credit", "sam")
        page.fill("#id_dollars", "11")
        page.fill("#id_memo", "Paid in a browser")
        page.click("text=Send money")
        page.wait_for_url(f"{base}/")
        assert page.text_content("li.message") == "Payment successful."
        assert "Paid in a browser" in (page.text_content("ul.payments") or "")
        page.reload()
        assert page.query_selector("li.message") is None  # shown once
        page.click("text=Log out")
        page.wait_for_url(f"{base}/accounts/login/")
        page.goto(f"{base}/")
        assert page.url.startswith(f"{base}/accounts/login/")
    finally:
        context.close()


def test_a_stored_script_does_not_run_in_a_browser(site: tuple[str, Browser]) -> None:
    base, chromium = site
    context = chromium.new_context()
    try:
        page = context.new_page()
        login(page, base, "brandon", "atigdng")
        payload = "<img src=x onerror=\"document.title='pwned'\"><script>window.pwned=1</script>"
        page.goto(f"{base}/pay/")
        page.fill("#id_credit", "sam")
        page.fill("#id_dollars", "1")
        page.fill("#id_memo", payload)
        page.click("text=Send money")
        page.wait_for_url(f"{base}/")
        page.reload()
        assert payload in (page.text_content("ul.payments") or "")  # shown as text
        assert page.evaluate("window.pwned") is None
        assert page.title() != "pwned"
    finally:
        context.close()


def test_another_sites_form_moves_no_money_in_a_browser(site: tuple[str, Browser]) -> None:
    """The book's CSRF page, working (its fields right), on a site of the attacker's own."""
    base, chromium = site
    context = chromium.new_context()
    try:
        page = context.new_page()
        login(page, base, "brandon", "atigdng")
        before = page.text_content("ul.payments")
        win = (
            f'<html><body><h1>Win Big!</h1><form id="f" method="post" action="{base}/pay/">'
            '<input name="credit" value="sam"><input name="dollars" value="110">'
            '<input name="memo" value="Theft"></form>'
            "<script>document.getElementById('f').submit()</script></body></html>"
        )
        attacker = context.new_page()  # a page of no origin of the bank's (about:blank)
        with attacker.expect_response(f"{base}/pay/") as answer:
            attacker.set_content(win)
        assert answer.value.status == 403  # Origin: null, and no SameSite cookie sent
        attacker.close()
        page.goto(f"{base}/")
        assert page.text_content("ul.payments") == before
        assert "Theft" not in (page.text_content("ul.payments") or "")
    finally:
        context.close()


def test_the_admin_works_under_the_csp_in_a_browser(site: tuple[str, Browser]) -> None:
    base, chromium = site
    context = chromium.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/admin/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "abc123")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        assert page.query_selector('a[href="/admin/djbank/payment/"]') is not None
        styles: list[int] = []
        page.on("response", lambda r: styles.append(r.status) if r.url.endswith(".css") else None)
        page.goto(f"{base}/admin/djbank/payment/")
        assert "Registration for PyCon" in (page.text_content("#result_list") or "")
        # the admin's stylesheets loaded (served by the app, allowed by 'self')
        assert styles and all(status in (200, 304) for status in styles), styles
        assert page.evaluate("document.styleSheets.length") >= 1
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        context.close()
