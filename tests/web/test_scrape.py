"""The login-aware scraper (F64-F66) against the test site and against bad servers.

BeautifulSoup and lxml + cssselect must give the same rows (on the site, on the book's page
shape, and on generated pages: a Hypothesis property); a login happens when the page asks;
bad input is one clear error, and the CLI exits 1 (a failure) or 2 (a usage error).
"""

from __future__ import annotations

import html
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import accept_loop, run_wirelab
from tests.web.test_tinysite import LocalSite, local_site
from wirelab.errors import (
    Broken,
    ConfigError,
    ConnectionRefused,
    RemoteProtocolError,
)
from wirelab.http.server import listen, start_waitress
from wirelab.lab.state import LabState
from wirelab.web.scrape.extract import Row, payments
from wirelab.web.scrape.fetch import Fetcher
from wirelab.web.scrape.login import LoginRefused, login_form, scrape
from wirelab.web.tinysite.pages import ACCOUNT_PAYMENTS

EXPECTED = [Row(p.direction, p.dollars, p.account, p.memo) for p in ACCOUNT_PAYMENTS]


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    with local_site() as served:
        yield served


def _bad_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path in ("/loop-a", "/loop-b"):
        other = "/loop-b" if path == "/loop-a" else "/loop-a"
        start_response("302 Found", [("Location", other), ("Content-Length", "0")])
        return [b""]
    if path == "/big":  # no Content-Length: the client must stop reading by itself
        start_response("200 OK", [("Content-Type", "text/html")])
        # 768 KiB: under waitress's 1 MiB output buffer, which would spill into a temp file
        return (b"<p>" + b"x" * 65536 for _ in range(12))
    if path == "/big-declared":
        start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(50 * 1024 * 1024))]
        )
        return [b"<p>only the start"]
    if path == "/json":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"not": "a page"}']
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/html")])
        return [b"<h1>gone</h1>"]
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<p>fine</p>"]


@pytest.fixture(scope="module")
def bad() -> Iterator[str]:
    with start_waitress(_bad_app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        yield f"http://{host}:{port}"


def _close_early(conn: socket.socket) -> None:
    conn.recv(65536)  # the request; then close without a word


def _half_body(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<p>short"
    )


# -- the login and the rows -------------------------------------------------------------------


@pytest.mark.parametrize("parser", ["bs4", "lxml"])
def test_the_scraper_logs_in_and_extracts_the_rows(site: LocalSite, parser: Any) -> None:
    result = scrape(site.url("/account/"), user="brandon", password="abc123", parser=parser)
    assert result.logged_in and result.url == site.url("/account/")
    assert result.rows == EXPECTED
    assert result.total_paid == 365 and result.total_received == 25
    assert ("POST", "/login") in site.log.seen


def test_a_page_without_a_login_is_scraped_without_one(site: LocalSite) -> None:
    result = scrape(site.url("/about.html"))
    assert not result.logged_in and result.rows == []


def test_the_login_session_carries_over_on_one_fetcher(site: LocalSite) -> None:
    with Fetcher() as fetcher:
        scrape(site.url("/account/"), user="brandon", password="abc123", fetcher=fetcher)
        site.log.clear()
        again = scrape(site.url("/account/statements.html"), fetcher=fetcher)
    assert not again.logged_in  # the session cookie was enough
    assert ("POST", "/login") not in site.log.seen


def test_a_wrong_password_is_a_refused_login(site: LocalSite) -> None:
    with pytest.raises(LoginRefused, match="refused the login of 'brandon'") as caught:
        scrape(site.url("/account/"), user="brandon", password="nope")
    assert caught.value.code == 403


def test_a_login_page_without_credentials_says_what_to_give(site: LocalSite) -> None:
    with pytest.raises(ConfigError, match="asks for a login: give --user and --password"):
        scrape(site.url("/account/"))


def test_the_login_form_sends_its_hidden_fields_back() -> None:
    page = """<form action="/in" method="post"><input type="hidden" name="csrf" value="t0k">
    <input name="who"><input type="PASSWORD" name="secret"></form>"""
    form = login_form(page, "http://h.example/x/y")
    assert form is not None and form.action == "http://h.example/in"
    assert form.data("u", "p") == {"csrf": "t0k", "who": "u", "secret": "p"}
    assert login_form("<form><input name=q></form>", "http://h.example/") is None


BOOK_SHAPE = """<ul>
    <li class="to">$125 to <b>psf</b>
    for: <i>Registration for PyCon</i></li>
    <li class="from">$25 from <b>sam</b>
    for: <i>Gas money-thanks for the ride!</i></li>
    <li class="other">$9 <i>not a payment</i></li>
</ul>"""


def test_bs4_and_lxml_agree_on_the_books_page_shape() -> None:
    rows = payments(BOOK_SHAPE, "bs4")
    assert rows == payments(BOOK_SHAPE, "lxml")
    assert rows == [
        Row("to", 125, "psf", "Registration for PyCon"),
        Row("from", 25, "sam", "Gas money-thanks for the ride!"),
    ]


@pytest.mark.parametrize("text", ["", "   ", "<html></html>", "not html at all", "<li class=to>"])
def test_both_parsers_survive_empty_and_odd_documents(text: str) -> None:
    if text == "<li class=to>":
        for parser in ("bs4", "lxml"):
            with pytest.raises(RemoteProtocolError, match="without a dollar amount"):
                payments(text, parser)
        return
    assert payments(text, "bs4") == payments(text, "lxml") == []


_memo = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=40
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["to", "from"]),
            st.integers(0, 10**9),
            st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
            _memo,
        ),
        max_size=8,
    )
)
def test_bs4_and_lxml_give_the_same_rows_on_any_page(rows: list[tuple[str, int, str, str]]) -> None:
    items = "\n".join(
        f'<li class="{d}">${n:,} {d} <b>{html.escape(a)}</b> for: <i>{html.escape(m)}</i></li>'
        for d, n, a, m in rows
    )
    page = f"<html><body><ul>{items}</ul></body></html>"
    soup, tree = payments(page, "bs4"), payments(page, "lxml")
    assert soup == tree
    assert [(r.direction, r.dollars, r.account) for r in soup] == [(d, n, a) for d, n, a, _ in rows]
    assert [r.memo for r in soup] == [" ".join(m.split()) for *_, m in rows]


# -- bad input --------------------------------------------------------------------------------


def test_a_response_that_is_not_html_is_one_error(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match=r"is not an HTML page \(application/json\)"):
        scrape(bad + "/json")


def test_a_huge_page_is_not_read_past_the_limit(bad: str) -> None:
    with Fetcher(max_bytes=256 * 1024) as fetcher:
        with pytest.raises(RemoteProtocolError, match="over the limit of 262144 bytes"):
            scrape(bad + "/big", fetcher=fetcher)
        with pytest.raises(RemoteProtocolError, match="52428800 bytes, over the limit"):
            scrape(bad + "/big-declared", fetcher=fetcher)


def test_a_redirect_loop_is_named(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match=r"a redirect loop: .*/loop-a -> .*/loop-b -> "):
        scrape(bad + "/loop-a")


def test_an_error_status_is_one_error(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match="/missing answered 404"):
        scrape(bad + "/missing")


def test_a_server_that_closes_early_is_broken() -> None:
    with accept_loop(_close_early) as (host, port), pytest.raises(Broken, match="closed the"):
        scrape(f"http://{host}:{port}/")
    with accept_loop(_half_body) as (host, port), pytest.raises(Broken, match="broke off"):
        scrape(f"http://{host}:{port}/")


def test_a_closed_port_is_refused() -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionRefused):
        scrape(f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "ftp://example.com/", "http:///nohost", "http://h:99999/", "/relative"],
)
def test_a_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        scrape(url)


# -- the command ------------------------------------------------------------------------------


def test_the_command_prints_the_rows_as_json(site: LocalSite) -> None:
    done = run_wirelab(
        "web", "scrape", site.url("/account/"), "-u", "brandon", "--password", "abc123",
        "--parser", "lxml", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["logged_in"] and document["parser"] == "lxml"
    assert [Row(**r) for r in document["rows"]] == EXPECTED


def test_the_command_prints_a_table(site: LocalSite) -> None:
    done = run_wirelab(
        "web", "scrape", site.url("/account/"), "-u", "brandon",
        env={**_env(), "WIRELAB_SCRAPE_PASSWORD": "abc123"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "logged in as brandon, 4 payments (parsed with bs4)" in done.stdout
    assert "Conference registration" in done.stdout
    assert "paid 365 dollars, received 25" in done.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "WIRELAB_SCRAPE_PASSWORD"}


@pytest.mark.parametrize(
    "args",
    [
        ["not a url"],
        ["ftp://example.com/"],
        ["http://127.0.0.1:1/", "--parser", "html5"],
        ["http://127.0.0.1:1/", "-u", "brandon"],
        ["http://127.0.0.1:1/", "-t", "0"],
    ],
)
def test_command_usage_errors_exit_2(args: list[str]) -> None:
    done = run_wirelab("web", "scrape", *args, env=_env())
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_command_failures_are_one_line_and_exit_1(bad: str, site: LocalSite) -> None:
    for url, words in [
        (bad + "/json", "is not an HTML page"),
        (bad + "/loop-a", "a redirect loop"),
        (site.url("/account/"), "asks for a login"),
    ]:
        done = run_wirelab("web", "scrape", url, env=_env())
        assert done.returncode == 1, (url, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("wirelab: error:") and words in lines[0]
    with accept_loop(_close_early) as (host, port):
        done = run_wirelab("web", "scrape", f"http://{host}:{port}/", env=_env())
    assert done.returncode == 1 and "closed the connection" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_command_scrapes_the_labs_site_by_path(
    wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab(
        "web", "scrape", "/account/", "-u", "brandon", "--password", "abc123", "--json",
        env=wirelab_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["url"].startswith("http://www.example.com:")
    assert [Row(**r) for r in document["rows"]] == EXPECTED
