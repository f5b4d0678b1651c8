"""The Django payments app (F63) over real HTTPS on loopback, driven by plain requests sessions.

The app is the session lab's ``djbank`` service (gunicorn behind the TLS front), as
``wirelab lab up`` runs it; other tests pay on it too, so these compare before and after, never
totals. Each test uses
requests directly (a real session with cookies, the lab CA as its only trust), not the app's
own client and not Django's test client, and behaves as a browser does: it sends the form's
CSRF token and an ``Origin`` header, except where the test is that it does not.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from wirelab.config import LAB_ACCOUNTS
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import Chapter, run_chapters
from wirelab.web import tour_django

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class App:
    """Where the private lab's djbank listens, and the CA that signed its certificate."""

    base: str
    cafile: Path
    directory: Path
    state: LabState


@pytest.fixture(scope="module")
def app(lab_djbank: ServiceView) -> App:
    ep = lab_djbank.endpoint("https")
    state = lab_djbank.state
    return App(f"https://{ep.address}:{ep.port}", Path(state.ca), Path(state.directory), state)


class Browser:
    """A requests session that behaves like a browser on the app's pages."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.session = requests.Session()
        self.session.trust_env = False  # the lab CA only, no $REQUESTS_CA_BUNDLE
        self.session.verify = str(app.cafile)

    def url(self, path: str) -> str:
        return self.app.base + path

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.url(path), timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def token(self, path: str) -> str:
        page = self.get(path)
        found = TOKEN.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
        return found.group(1)

    def post(
        self,
        path: str,
        data: dict[str, str],
        *,
        token: str | None = "form",
        origin: str | None = "self",
    ) -> requests.Response:
        fields = dict(data)
        if token == "form":
            fields["csrfmiddlewaretoken"] = self.token(path)
        elif token is not None:
            fields["csrfmiddlewaretoken"] = token
        headers = {}
        if origin == "self":
            headers["Origin"] = self.app.base
        elif origin is not None:
            headers["Origin"] = origin
        return self.session.post(
            self.url(path), data=fields, headers=headers, timeout=10, allow_redirects=False
        )

    def login(self, user: str, password: str) -> requests.Response:
        return self.post("/accounts/login/", {"username": user, "password": password})

    def pay(self, credit: str, dollars: str, memo: str, **kwargs: str | None) -> requests.Response:
        return self.post("/pay/", {"credit": credit, "dollars": dollars, "memo": memo}, **kwargs)

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def browser(app: App) -> Iterator[Browser]:
    visitor = Browser(app)
    yield visitor
    visitor.close()


@pytest.fixture
def brandon(app: App) -> Iterator[Browser]:
    visitor = Browser(app)
    assert visitor.login("brandon", "atigdng").status_code == 302
    yield visitor
    visitor.close()


def cookie_header(response: requests.Response, name: str) -> str:
    raw = response.raw.headers.getlist("Set-Cookie")
    found = [c for c in raw if c.startswith(name + "=")]
    assert found, f"no {name} cookie in {raw}"
    return found[0]


def payments_of(visitor: Browser) -> list[str]:
    page = visitor.get("/")
    assert page.status_code == 200, page.status_code
    items = re.findall(r'<li class="(?:to|from)">(.*?)</li>', page.text, re.S)
    return [html.unescape(" ".join(re.sub(r"<[^>]+>", "", li).split())) for li in items]


# -- pages, cookies and headers ---------------------------------------------------------------


def test_the_payments_page_asks_for_a_login_first(browser: Browser) -> None:
    page = browser.get("/")
    assert page.status_code == 302
    assert page.headers["Location"] == "/accounts/login/?next=/"


def test_pages_carry_the_security_headers_and_secure_cookies(browser: Browser) -> None:
    page = browser.get("/accounts/login/")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in page.headers  # see settings.py: not on this host
    csrf = cookie_header(page, "__Host-djbank-csrftoken").lower()
    assert "; secure" in csrf and "; httponly" in csrf and "samesite=strict" in csrf
    assert "path=/" in csrf and "domain=" not in csrf


def test_login_sets_a_secure_session_cookie_and_shows_the_books_payments(app: App) -> None:
    visitor = Browser(app)
    try:
        reply = visitor.login("brandon", "atigdng")
        assert reply.status_code == 302 and reply.headers["Location"] == "/"
        session = cookie_header(reply, "__Host-djbank-session").lower()
        assert "; secure" in session and "; httponly" in session and "samesite=lax" in session
        assert payments_of(visitor)[:3] == [  # the seed; other tests may have paid since
            "$125 to psf for: Registration for PyCon",
            "$200 to liz for: Payment for writing that code",
            "$25 from sam for: Gas money-thanks for the ride!",
        ]
    finally:
        visitor.close()


def test_a_wrong_password_is_refused(browser: Browser) -> None:
    reply = browser.login("brandon", "not-his")
    assert reply.status_code == 200
    assert "do not match" in reply.text
    assert "__Host-djbank-session" not in browser.session.cookies
    assert browser.get("/").status_code == 302


def test_the_payees_cannot_log_in(browser: Browser) -> None:
    assert browser.login("psf", "").status_code == 200
    assert browser.login("psf", "psf").status_code == 200
    assert browser.get("/").status_code == 302


def test_logout_ends_the_session_on_the_server(app: App) -> None:
    visitor = Browser(app)
    try:
        assert visitor.login("sam", "xyzzy").status_code == 302
        stolen = visitor.session.cookies.get("__Host-djbank-session")
        assert visitor.get("/").status_code == 200
        token = TOKEN.search(visitor.get("/").text)
        assert token
        out = visitor.post("/logout/", {}, token=token.group(1))
        assert out.status_code == 302 and out.headers["Location"] == "/accounts/login/"
        assert visitor.get("/").status_code == 302
        # the old cookie, replayed, is no session any more
        thief = Browser(app)
        thief.session.cookies.set("__Host-djbank-session", stolen, domain="127.0.0.1")
        assert thief.get("/").status_code == 302
        thief.close()
    finally:
        visitor.close()


def test_logout_by_get_is_refused(brandon: Browser) -> None:
    assert brandon.get("/logout/").status_code == 405
    assert brandon.get("/").status_code == 200  # still logged in


def test_a_tampered_session_cookie_is_no_session(brandon: Browser) -> None:
    value = brandon.session.cookies.get("__Host-djbank-session")
    assert value
    brandon.session.cookies.set(
        "__Host-djbank-session", value[:-1] + ("a" if value[-1] != "a" else "b"), domain="127.0.0.1"
    )
    assert brandon.get("/").status_code == 302


def test_an_unknown_host_header_is_refused(browser: Browser) -> None:
    page = browser.get("/accounts/login/", headers={"Host": "evil.example.net"})
    assert page.status_code == 400


def test_the_static_files_are_served_and_nothing_beside_them(browser: Browser) -> None:
    assert browser.get("/static/djbank/style.css").status_code == 200
    assert browser.get("/static/admin/css/base.css").status_code == 200
    for path in ("/static/../settings.py", "/static/djbank/../../settings.py", "/static/%2e%2e/x"):
        assert browser.get(path).status_code in (400, 404), path


# -- paying, and the messages framework --------------------------------------------------------


def test_a_payment_is_made_and_its_message_shown_once(app: App, brandon: Browser) -> None:
    reply = brandon.pay("sam", "7", "Lunch money")
    assert reply.status_code == 302 and reply.headers["Location"] == "/"
    first = brandon.get("/")
    assert first.text.count("Payment successful.") == 1
    assert "$7 to <b>sam</b> for: <i>Lunch money</i>" in first.text
    second = brandon.get("/")
    assert "Payment successful." not in second.text  # shown once, then gone
    sam = Browser(app)
    try:
        assert sam.login("sam", "xyzzy").status_code == 302
        assert "$7 from brandon for: Lunch money" in payments_of(sam)
        assert "Payment successful." not in sam.get("/").text  # messages are per session
    finally:
        sam.close()


def test_the_pay_form_shows_the_fields(brandon: Browser) -> None:
    page = brandon.get("/pay/")
    assert page.status_code == 200
    for name in ("credit", "dollars", "memo", "csrfmiddlewaretoken"):
        assert f'name="{name}"' in page.text
    assert 'name="debit"' not in page.text  # the payer is the logged-in user, never a field


@pytest.mark.parametrize(
    ("credit", "dollars", "memo", "complaint"),
    [
        ("sam", "0", "nothing", "greater than or equal to 1"),
        ("sam", "-5", "negative", "greater than or equal to 1"),
        ("sam", "100001", "too much", "less than or equal to 100000"),
        ("sam", "1" + "0" * 40, "huge", "less than or equal to 100000"),
        ("sam", "12.50", "cents", "Enter a whole number"),
        ("sam", "ten", "words", "Enter a whole number"),
        ("sam", "", "no amount", "This field is required"),
        ("nobody", "5", "a stranger", "No such account"),
        ("", "5", "no payee", "This field is required"),
        ("brandon", "5", "to myself", "You cannot pay yourself"),
        ("sam", "5", "   ", "This field is required"),
        ("sam", "5", "", "This field is required"),
        ("sam", "5", "m" * 201, "at most 200 characters"),
        ("s" * 151, "5", "long name", "at most 150 characters"),
    ],
    ids=[
        "zero",
        "negative",
        "over-the-limit",
        "huge",
        "cents",
        "words",
        "no-amount",
        "unknown-payee",
        "no-payee",
        "oneself",
        "blank-memo",
        "no-memo",
        "long-memo",
        "long-payee",
    ],
)
def test_each_bad_payment_is_refused_with_its_reason(
    brandon: Browser, credit: str, dollars: str, memo: str, complaint: str
) -> None:
    before = payments_of(brandon)
    reply = brandon.pay(credit, dollars, memo)
    assert reply.status_code == 400, reply.status_code
    assert complaint in reply.text.replace("&#x27;", "'"), reply.text[-1500:]
    assert payments_of(brandon) == before
    assert "Payment successful." not in brandon.get("/").text


# -- CSRF ---------------------------------------------------------------------------------------


def test_a_payment_without_the_csrf_token_is_refused(brandon: Browser) -> None:
    before = payments_of(brandon)
    reply = brandon.pay("sam", "9", "csrf", token=None)
    assert reply.status_code == 403
    assert "CSRF" in reply.text
    assert payments_of(brandon) == before


def test_a_forged_csrf_token_is_refused(brandon: Browser) -> None:
    before = payments_of(brandon)
    forged = "A" * 64
    assert brandon.pay("sam", "9", "forged", token=forged).status_code == 403
    assert brandon.pay("sam", "9", "forged", token="").status_code == 403
    assert payments_of(brandon) == before


def test_another_sites_form_is_refused_even_with_a_token(brandon: Browser) -> None:
    """The attacker's page posts cross-site: Django checks the Origin, not only the token."""
    before = payments_of(brandon)
    reply = brandon.pay("sam", "9", "cross-site", origin="https://attacker.example.net")
    assert reply.status_code == 403
    assert "Origin checking failed" in reply.text or "CSRF" in reply.text
    assert payments_of(brandon) == before


def test_a_post_with_neither_origin_nor_referer_is_refused(brandon: Browser) -> None:
    assert brandon.pay("sam", "9", "no origin", origin=None).status_code == 403


def test_the_login_form_is_csrf_protected_too(browser: Browser) -> None:
    reply = browser.post(
        "/accounts/login/", {"username": "brandon", "password": "atigdng"}, token=None
    )
    assert reply.status_code == 403
    assert browser.get("/").status_code == 302


# -- the admin ----------------------------------------------------------------------------------


def test_the_admin_lets_the_lab_superuser_in(app: App) -> None:
    admin = Browser(app)
    try:
        reply = admin.post(
            "/admin/login/?next=/admin/",
            {"username": "admin", "password": LAB_ACCOUNTS[0].password, "next": "/admin/"},
        )
        assert reply.status_code == 302 and reply.headers["Location"] == "/admin/"
        home = admin.get("/admin/")
        assert home.status_code == 200 and "Payments" in home.text
        listing = admin.get("/admin/djbank/payment/")
        assert listing.status_code == 200
        assert "Registration for PyCon" in listing.text
        assert admin.get("/admin/auth/user/").status_code == 200
    finally:
        admin.close()


def test_the_admin_refuses_a_plain_user(app: App, brandon: Browser) -> None:
    reply = brandon.get("/admin/")
    assert reply.status_code == 302
    assert urlsplit(reply.headers["Location"]).path == "/admin/login/"
    assert brandon.get("/admin/djbank/payment/").status_code == 302
    sam = Browser(app)
    try:
        login = sam.post(
            "/admin/login/?next=/admin/",
            {"username": "sam", "password": "xyzzy", "next": "/admin/"},
        )
        assert login.status_code == 200  # the form again, with the refusal
        assert "Please enter the correct username and password for a staff account" in login.text
        assert sam.get("/admin/").status_code == 302
    finally:
        sam.close()


def test_the_admin_refuses_a_wrong_password(browser: Browser) -> None:
    reply = browser.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": "guess", "next": "/admin/"}
    )
    assert reply.status_code == 200
    assert browser.get("/admin/").status_code == 302


# -- injection ----------------------------------------------------------------------------------


def test_sql_injection_in_every_field_is_inert(app: App, brandon: Browser) -> None:
    drop = "x'); DROP TABLE djbank_payment; --"
    assert brandon.pay("sam' OR '1'='1", "5", "or").status_code == 400
    assert brandon.pay("sam", "5 OR 1=1", "or").status_code == 400
    reply = brandon.pay("sam", "3", drop)
    assert reply.status_code == 302  # stored as text, verbatim
    assert any(drop in line for line in payments_of(brandon))
    # the table is still there, and logins are not fooled either
    other = Browser(app)
    try:
        assert other.login("' OR 1=1 --", "x").status_code == 200
        assert other.login("brandon' --", "x").status_code == 200
        assert other.get("/").status_code == 302
    finally:
        other.close()


def test_xss_in_every_field_is_inert(app: App, brandon: Browser) -> None:
    script = "<script>alert('xss')</script>"
    reply = brandon.pay("sam", "4", script)
    assert reply.status_code == 302
    page = brandon.get("/").text
    assert script not in page
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in page
    refused = brandon.pay(script, "4", "memo")  # echoed back in the form: escaped too
    assert refused.status_code == 400
    assert script not in refused.text and "&lt;script&gt;" in refused.text
    refused = brandon.pay("sam", '"><img src=x onerror=alert(1)>', "memo")
    assert "<img src=x" not in refused.text
    login = Browser(app)
    try:
        page = login.login(script, "x").text
        assert script not in page and "&lt;script&gt;" in page
    finally:
        login.close()
    # and a script that slipped through would still not run: no inline script is allowed
    assert "'unsafe-inline'" not in brandon.get("/").headers["Content-Security-Policy"]


# -- the tour -----------------------------------------------------------------------------------


def test_the_django_steps_of_the_tour_pass(app: App) -> None:
    mine = [
        step for step in tour_django.CHAPTER11.steps if step.run.__module__ == tour_django.__name__
    ]
    assert len(mine) == 4, [s.name for s in mine]
    chapter = Chapter(11, "The World Wide Web (django steps)", steps=mine)
    results = list(run_chapters([chapter], app.state))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert not failed, failed
    transcript = "\n".join(line for r in results for line in r.transcript)
    assert "'Payment successful.'" in transcript
    assert "no money moved" in transcript


# -- load -------------------------------------------------------------------------------------


def test_concurrent_payments_all_land(app: App) -> None:
    """Eight threads of gunicorn share one SQLite file: no payment may fail or be lost."""
    from concurrent.futures import ThreadPoolExecutor

    payers = {"brandon": "atigdng", "sam": "xyzzy"}
    visitors = {user: Browser(app) for user in payers}
    try:
        for user, password in payers.items():
            assert visitors[user].login(user, password).status_code == 302
        tokens = {user: visitors[user].token("/pay/") for user in payers}

        def pay(number: int) -> int:
            user = "brandon" if number % 2 else "sam"
            other = "sam" if user == "brandon" else "brandon"
            return (
                visitors[user]
                .pay(other, "1", f"concurrent {number}", token=tokens[user])
                .status_code
            )

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(pay, range(40)))
        assert statuses == [302] * 40
        memos = " ".join(payments_of(visitors["brandon"]))
        assert all(f"concurrent {n}" in memos for n in range(40))
    finally:
        for visitor in visitors.values():
            visitor.close()


# -- the CLI's clients, against the running lab -----------------------------------------------


def test_cli_payments_and_pay_use_the_running_lab(app: App) -> None:
    import json

    from tests.conftest import run_wirelab
    from wirelab.testing import cli_env

    env = cli_env(app.state)
    listed = run_wirelab("web", "django", "payments", "-u", "sam", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["user"] == "sam"
    assert {
        "direction": "to",
        "dollars": 25,
        "account": "brandon",
        "memo": "Gas money-thanks for the ride!",
    } in document["payments"]
    paid = run_wirelab(
        "web",
        "django",
        "pay",
        "-u",
        "sam",
        "--to",
        "liz",
        "--dollars",
        "3",
        "-m",
        "from the CLI",
        env=env,
    )
    assert paid.returncode == 0, paid.stderr
    assert paid.stdout.strip() == "Payment successful."
    assert (
        "$3 to liz for: from the CLI"
        in run_wirelab("web", "django", "payments", "-u", "sam", env=env).stdout
    )
    refused = run_wirelab(
        "web", "django", "pay", "--to", "brandon", "--dollars", "3", "-m", "to myself", env=env
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == "wirelab: error: the payment was refused: You cannot pay yourself."
    )
    assert "Traceback" not in refused.stderr
    # A wrong password (exit 1, one line) and a zero amount: the chapter page's console block,
    # run by tests/docs against the session lab.
