"""The payments apps of chapter 11 over real loopback sockets: the book's wire, and each refusal.

Every request goes through the lab's endpoints (the h11 front, gunicorn, the app) with requests
sessions (:class:`BankClient`) or raw sockets; never Flask's test client. The session lab is
shared, so checks look at what changed (a unique memo, a count), never at absolute totals.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import requests

from wirelab.lab.state import LabState, ServiceView
from wirelab.web.bank.client import BankClient
from wirelab.web.bank.urls import BankURLs

BRANDON = ("brandon", "atigdng")
SAM = ("sam", "xyzzy")
XSS = '<script>alert("xss")</script>'
SQLI = ("' OR '1'='1", "sam'; DROP TABLE payment; --", "1 OR 1=1", '" OR ""="')


@pytest.fixture(scope="module")
def urls(lab_bank: ServiceView) -> BankURLs:
    return BankURLs.from_lab(lab_bank.state)


@pytest.fixture
def insecure(urls: BankURLs) -> Iterator[BankClient]:
    with BankClient(urls.insecure) as client:
        yield client


@pytest.fixture
def hardened(urls: BankURLs, wirelab_lab: LabState) -> Iterator[BankClient]:
    with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as client:
        yield client


@pytest.fixture
def brandon(hardened: BankClient) -> BankClient:
    assert hardened.login(*BRANDON)
    return hardened


def _get(url: str, **kwargs: Any) -> tuple[int, str]:
    """GET with requests, the response closed at once (its socket with it)."""
    with requests.get(url, timeout=10, **kwargs) as reply:
        return reply.status_code, reply.text


def _memo() -> str:
    return f"test {uuid.uuid4().hex[:12]}"


def _memos(client: BankClient) -> list[str]:
    return [p.memo for p in client.payments()]


# -- the book's wire: the book's scraper (mscrape.py) reads both apps ----------------------------


@pytest.mark.parametrize("which", ["insecure", "hardened"])
def test_book_scraper_logs_in_and_reads_li_to_on_both_apps(
    which: str, urls: BankURLs, wirelab_lab: LabState
) -> None:
    # What mscrape.py does, with plain requests and lxml: POST /login, follow to /, li.to rows.
    base = urls.bank(which)
    with requests.Session() as session:
        session.trust_env = False
        verify = wirelab_lab.ca if which == "hardened" else True
        with session.post(
            f"{base}/login",
            data=dict(zip(("username", "password"), BRANDON, strict=True)),
            timeout=10,
            verify=verify,
        ) as reply:
            assert reply.url == f"{base}/"
            root = lxml.html.document_fromstring(reply.text)
    rows = [
        (int(li.text.split()[0].lstrip("$")), li.cssselect("i")[0].text)
        for li in root.cssselect("li.to")
    ]
    assert (125, "Registration for PyCon") in rows
    assert (200, "Payment for writing that code") in rows


def test_seed_is_the_books_three_payments(insecure: BankClient) -> None:
    assert insecure.login(*SAM)
    listed = insecure.payments()
    assert ("to", 25, "brandon", "Gas money-thanks for the ride!") in [
        (p.direction, p.dollars, p.account, p.memo) for p in listed
    ]


# -- the insecure app: insecure, and saying so --------------------------------------------------


def test_insecure_trusts_a_forged_cookie(urls: BankURLs) -> None:
    status, text = _get(f"{urls.insecure}/", cookies={"username": "sam"}, allow_redirects=False)
    assert status == 200 and "Welcome, sam" in text


def test_insecure_reflects_the_flash_parameter_unescaped(urls: BankURLs) -> None:
    _, text = _get(f"{urls.insecure}/", params={"flash": XSS}, cookies={"username": "brandon"})
    assert XSS in text


def test_insecure_stores_a_memo_unescaped(insecure: BankClient) -> None:
    assert insecure.login(*BRANDON)
    marker = uuid.uuid4().hex[:8]
    assert insecure.pay("sam", 1, f"<b id='{marker}'>bold</b>").accepted
    assert f"<b id='{marker}'>bold</b>" in insecure.index_html()


@pytest.mark.parametrize("path", ["/login", "/", "/pay", "/no-such-page"])
def test_insecure_says_on_every_page_it_is_deliberately_insecure(path: str, urls: BankURLs) -> None:
    _, text = _get(f"{urls.insecure}{path}", cookies={"username": "brandon"})
    assert "deliberately insecure" in text and "bound to loopback" in text


def test_insecure_binds_loopback_only(lab_bank: ServiceView) -> None:
    assert lab_bank.endpoint("insecure").address == "127.0.0.1"


def test_insecure_stays_on_127_0_0_1_whatever_the_lab_binds(tmp_path: Path) -> None:
    # A lab bound elsewhere (127.0.0.2, loopback too, so the test binds nothing public).
    from wirelab.lab.service import LabContext
    from wirelab.lab.state import state_path
    from wirelab.lab.supervisor import LabThread
    from wirelab.web.bank.service import BankService

    lab = LabContext(state_dir=tmp_path, bind_host="127.0.0.2", ephemeral=True)
    thread = LabThread([BankService()], lab, state_file=state_path(tmp_path))
    state = thread.start()
    try:
        where = {ep.endpoint: ep.address for ep in state.endpoints}
        assert where == {"insecure": "127.0.0.1", "hardened": "127.0.0.2", "attacker": "127.0.0.2"}
        insecure = state.endpoint("bank", "insecure")
        assert "deliberately insecure" in _get(f"http://127.0.0.1:{insecure.port}/login")[1]
        with socket.socket() as probe:
            probe.settimeout(10)
            assert probe.connect_ex(("127.0.0.2", insecure.port)) != 0  # nobody listens there
        attacker = state.endpoint("bank", "attacker")
        _, page = _get(f"http://127.0.0.2:{attacker.port}/")
        assert f"http://127.0.0.1:{insecure.port}" in page  # told where the banks are
    finally:
        thread.stop()


# -- the hardened app: cookies, headers, TLS ----------------------------------------------------


def test_hardened_session_cookie_is_signed_secure_httponly_samesite(
    urls: BankURLs, hardened: BankClient
) -> None:
    reply = hardened.request(
        "POST", "login", data=dict(zip(("username", "password"), BRANDON, strict=True))
    )
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie
    assert "username=" not in cookie


def test_hardened_sends_a_strict_content_security_policy(brandon: BankClient) -> None:
    headers = brandon.request("GET", "").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_hardened_speaks_only_tls(lab_bank: ServiceView) -> None:
    with socket.create_connection(lab_bank.endpoint("hardened").sockaddr, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")


def test_hardened_certificate_verifies_with_the_lab_ca(
    lab_bank: ServiceView, wirelab_lab: LabState
) -> None:
    ctx = wirelab_lab.ssl_context()
    with (
        socket.create_connection(lab_bank.endpoint("hardened").sockaddr, timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="www.example.com") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection(lab_bank.endpoint("hardened").sockaddr, timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="www.example.com")


# -- the hardened app: CSRF ---------------------------------------------------------------------


def test_security_hardened_refuses_a_payment_without_csrf_token(brandon: BankClient) -> None:
    memo = _memo()
    result = brandon.pay("sam", 5, memo, csrf_token=None)
    assert result.status == 403 and not result.accepted
    assert memo not in _memos(brandon)


def test_security_hardened_refuses_a_forged_csrf_token(brandon: BankClient) -> None:
    memo = _memo()
    real = brandon.csrf_token()
    assert real
    for forged in ("forged", real[:-1] + ("A" if real[-1] != "A" else "B"), real + "x", ""):
        result = brandon.pay("sam", 5, memo, csrf_token=forged)
        assert result.status == 403, forged
    assert memo not in _memos(brandon)


def test_security_hardened_refuses_another_sessions_token(
    urls: BankURLs, wirelab_lab: LabState, brandon: BankClient
) -> None:
    with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as sam:
        assert sam.login(*SAM)
        theirs = sam.csrf_token()
    memo = _memo()
    assert brandon.pay("sam", 5, memo, csrf_token=theirs).status == 403
    assert memo not in _memos(brandon)


def test_hardened_accepts_a_payment_with_its_token(brandon: BankClient) -> None:
    memo = _memo()
    result = brandon.pay("sam", 7, memo)
    assert result.accepted and result.status == 302
    assert "Payment successful" in brandon.index_html()  # flashed once
    assert "Payment successful" not in brandon.index_html()
    assert memo in _memos(brandon)


def test_security_hardened_refuses_login_posted_from_another_origin(
    urls: BankURLs, hardened: BankClient
) -> None:
    reply = hardened.request(
        "POST",
        "login",
        data=dict(zip(("username", "password"), BRANDON, strict=True)),
        headers={"Origin": urls.attacker},
    )
    assert reply.status_code == 400 and "Set-Cookie" not in reply.headers


# -- the hardened app: the session cookie -------------------------------------------------------


def _session_cookie(client: BankClient) -> str:
    value = client.session.cookies.get("session")
    assert value
    return str(value)


@pytest.mark.parametrize("how", ["payload", "signature", "unsigned", "garbage"])
def test_security_hardened_ignores_a_tampered_session_cookie(
    how: str, urls: BankURLs, wirelab_lab: LabState, brandon: BankClient
) -> None:
    payload, stamp, signature = _session_cookie(brandon).rsplit(".", 2)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["username"] = "sam"
    forged_payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    forged = {
        "payload": f"{forged_payload}.{stamp}.{signature}",
        "signature": f"{payload}.{stamp}.{signature[:-2]}AA",
        "unsigned": forged_payload,
        "garbage": "x" * 3000,
    }[how]
    with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as mallory:
        mallory.session.cookies.set("session", forged)
        reply = mallory.request("GET", "")
        assert reply.status_code == 302 and reply.headers["Location"].endswith("/login")
        assert mallory.pay("brandon", 5, _memo(), csrf_token=data["csrf_token"]).status == 403


def test_hardened_logout_clears_the_session(brandon: BankClient) -> None:
    token = brandon.csrf_token()
    brandon.request("GET", "logout")
    assert brandon.request("GET", "").status_code == 302
    assert brandon.pay("sam", 5, _memo(), csrf_token=token).status == 403


# -- the hardened app: XSS in every field --------------------------------------------------------


def test_security_hardened_escapes_xss_in_the_memo(
    urls: BankURLs, wirelab_lab: LabState, brandon: BankClient
) -> None:
    with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as sam:
        assert sam.login(*SAM)
        marker = uuid.uuid4().hex[:8]
        assert sam.pay("brandon", 1, f"{XSS}{marker}").accepted
    page = brandon.index_html()
    assert XSS not in page
    assert f"&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;{marker}" in page
    assert any(p.memo == f"{XSS}{marker}" for p in brandon.payments())  # shown as text


@pytest.mark.parametrize("field", ["account", "dollars", "memo"])
def test_security_hardened_escapes_xss_echoed_in_the_pay_form(
    field: str, brandon: BankClient
) -> None:
    fields = {"account": "sam", "dollars": "5", "memo": "ok"}
    fields[field] = '"><script>alert(1)</script>'
    if field == "memo":
        fields["account"] = "nobody"  # refused, so the form comes back with the memo in it
    fields["csrf_token"] = brandon.csrf_token() or ""
    reply = brandon.request("POST", "pay", data=fields)
    assert reply.status_code == 400
    assert "<script>alert(1)</script>" not in reply.text
    assert "&#34;&gt;" in reply.text  # echoed, escaped (and cut to the field's length)


def test_security_hardened_escapes_xss_in_the_login_name(hardened: BankClient) -> None:
    reply = hardened.request(
        "POST", "login", data={"username": '"><script>x</script>', "password": "no"}
    )
    assert "<script>x</script>" not in reply.text and "&lt;script&gt;" in reply.text


def test_security_hardened_ignores_the_flash_parameter(brandon: BankClient) -> None:
    page = brandon.index_html(f"?flash={XSS}")
    assert XSS not in page and 'class="flash_message"' not in page


# -- the hardened app: SQL injection in every field ----------------------------------------------


@pytest.mark.parametrize("payload", SQLI)
def test_security_hardened_sql_injection_in_login_fields(
    payload: str, hardened: BankClient
) -> None:
    assert not hardened.login(payload, payload)
    assert not hardened.login("brandon", payload)
    assert hardened.login(*BRANDON)  # the table and the logins are intact


@pytest.mark.parametrize("payload", SQLI)
@pytest.mark.parametrize("field", ["account", "dollars", "memo"])
def test_security_hardened_sql_injection_in_payment_fields(
    field: str, payload: str, brandon: BankClient
) -> None:
    before = brandon.payments()
    fields = {"account": "sam", "dollars": "3", "memo": _memo()}
    fields[field] = payload
    result = brandon.pay(**fields)
    after = brandon.payments()
    if field == "memo":  # stored, as text: the query's parameters are never SQL
        assert result.accepted and after[-1].memo == payload and len(after) == len(before) + 1
    else:
        assert not result.accepted and result.status == 400 and after == before
    assert after[: len(before)] == before  # nothing else changed, the table is still there


def test_security_insecure_app_is_not_sql_injectable_either(insecure: BankClient) -> None:
    # Deliberately insecure in its web layer only: its queries are parameterised too.
    assert insecure.login(*BRANDON)
    before = insecure.payments()
    assert insecure.pay("x' OR '1'='1", 1, "sam'); DROP TABLE payment; --").accepted
    after = insecure.payments()
    assert after[: len(before)] == before and len(after) == len(before) + 1


# -- the hardened app: amounts, accounts, lengths -----------------------------------------------


@pytest.mark.parametrize(
    "dollars",
    [
        "-5",
        "0",
        "00",
        "1000001",
        "99999999999999999999",
        "abc",
        "1.5",
        "1e3",
        "+5",
        " ",
        "\u0663",
        "\uff15",
        "5 5",
    ],
)
def test_security_hardened_refuses_bad_amounts(dollars: str, brandon: BankClient) -> None:
    memo = _memo()
    result = brandon.pay("sam", dollars, memo)
    assert not result.accepted and result.status == 400 and result.complaint
    assert memo not in _memos(brandon)


@pytest.mark.parametrize("dollars", ["1", "1000000"])
def test_hardened_accepts_the_bounds(dollars: str, brandon: BankClient) -> None:
    assert brandon.pay("psf", dollars, _memo()).accepted


@pytest.mark.parametrize(
    ("account", "complaint"),
    [("brandon", "You cannot pay yourself"), ("nobody", "No such account")],
)
def test_security_hardened_refuses_self_and_unknown_accounts(
    account: str, complaint: str, brandon: BankClient
) -> None:
    result = brandon.pay(account, 5, _memo())
    assert result.status == 400 and result.complaint == complaint


@pytest.mark.parametrize(
    ("account", "memo"),
    [("s" * 33, "ok"), ("sam", "m" * 201), ("sam", "tab\there"), ("sam", "nul\x00")],
)
def test_security_hardened_refuses_overlong_or_unprintable_fields(
    account: str, memo: str, brandon: BankClient
) -> None:
    result = brandon.pay(account, 5, memo)
    assert not result.accepted and result.status == 400


def test_security_hardened_refuses_a_huge_form(brandon: BankClient) -> None:
    token = brandon.csrf_token() or ""
    reply = brandon.request(
        "POST",
        "pay",
        data={"account": "sam", "dollars": "1", "memo": "m" * 100_000, "csrf_token": token},
    )
    assert reply.status_code == 413


def test_hardened_survives_bad_input_and_serves_others(
    urls: BankURLs, wirelab_lab: LabState, brandon: BankClient
) -> None:
    for junk in (b"\xff\xfe", "caf\u00e9".encode("latin-1")):
        reply = brandon.request(
            "POST", "pay", data=junk, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert reply.status_code in (400, 403)
    with BankClient(urls.hardened, ssl_context=wirelab_lab.ssl_context()) as other:
        assert other.login(*SAM) and other.payments()


def test_security_hardened_throttles_failed_logins_per_account(hardened: BankClient) -> None:
    name = f"nobody{uuid.uuid4().hex[:8]}"
    for _ in range(10):
        reply = hardened.request("POST", "login", data={"username": name, "password": "x"})
        assert reply.status_code == 200 and "Please try again" in reply.text
    reply = hardened.request("POST", "login", data={"username": name, "password": "x"})
    assert reply.status_code == 429 and "Too many failed logins" in reply.text
    assert hardened.login(*BRANDON)  # another account is not locked out
