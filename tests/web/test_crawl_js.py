"""The JavaScript-aware crawler (F68) and the browser scraper (F65) in real headless Chromium.

One crawl of the test site finds every static page and every script- or form-only page,
counted apart and compared to the manifest; the site's request log proves robots.txt and
the host were respected. These tests use tests/web's ``browser`` fixture (one Chromium per
module): where Chromium cannot run they skip with the reason, and under
``WIRELAB_REQUIRE_SERVICES=1`` they fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import run_wirelab
from tests.web.test_scrape import EXPECTED, _bad_app
from tests.web.test_tinysite import LocalSite, local_site
from wirelab.errors import RemoteProtocolError
from wirelab.http.server import listen, start_waitress
from wirelab.lab.state import LabState, ServiceView
from wirelab.web.scrape.crawl import CrawlLimits, CrawlResult
from wirelab.web.scrape.jscrawl import crawl_js
from wirelab.web.scrape.login import LoginRefused, scrape_in_browser
from wirelab.web.scrape.urls import canonical, path_of
from wirelab.web.tinysite import pages

if TYPE_CHECKING:
    from playwright.sync_api import Browser

FAST = CrawlLimits(delay=0)


@pytest.fixture(scope="module")
def crawled(browser: Browser) -> Iterator[tuple[LocalSite, CrawlResult]]:
    """One JavaScript crawl of a freshly served site, with the site's request log."""
    with local_site() as site:
        result = crawl_js(site.url("/"), browser=browser, limits=FAST)
        yield site, result


def test_the_crawl_finds_every_page_static_and_javascript_only_apart(
    crawled: tuple[LocalSite, CrawlResult],
) -> None:
    _, result = crawled
    assert {path_of(u) for u in result.urls("static")} == pages.paths("static")
    assert {path_of(u) for u in result.urls("js")} == pages.paths("js")
    assert result.count("static") == 9 and result.count("js") == 5
    assert not result.capped and not result.errors


def test_pages_are_reached_the_way_the_manifest_says(
    crawled: tuple[LocalSite, CrawlResult],
) -> None:
    _, result = crawled
    via = {path_of(p.url): p.via for p in result.pages}
    assert via["/js/gallery.html"] == via["/js/archive.html"] == "script"
    assert via[f"/search/results.html?q={pages.SEARCH_TERM}"] == "form"
    assert via["/js/archive-2019.html"] == "link"  # a plain link, but on a script-only page


def test_robots_txt_and_the_host_are_respected_by_the_browser(
    crawled: tuple[LocalSite, CrawlResult],
) -> None:
    site, result = crawled
    assert site.log.paths()[0] == "/robots.txt"
    assert not [p for p in site.log.paths() if p.startswith("/private/")]
    assert site.trap.seen == []
    assert site.url("/private/staff.html") in result.skipped_for("robots.txt")
    assert canonical(site.trap_url) in result.skipped_for("off-host")
    assert ("POST", "/login") not in site.log.seen  # no form with a password is submitted


def test_no_page_is_loaded_twice(crawled: tuple[LocalSite, CrawlResult]) -> None:
    site, result = crawled
    urls = [p.url for p in result.pages]
    assert len(urls) == len(set(urls))
    documents = [t for m, t in site.log.seen if t.endswith(".html") and m == "GET"]
    # each page once, and /search.html once more to submit its form
    assert documents.count("/about.html") == 1 and documents.count("/search.html") == 2


def test_the_cap_stops_the_browser_crawl(browser: Browser) -> None:
    with local_site() as site:
        result = crawl_js(site.url("/"), browser=browser, limits=CrawlLimits(delay=0, max_pages=3))
    assert result.capped and result.requests == 3 and len(result.pages) == 3


def test_post_forms_are_never_submitted(browser: Browser) -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/robots.txt":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/html")])
        return [
            b"<form method=post action=/pay><input name=x value=1></form>"
            b"<form action=/in><input name=u><input type=password name=p></form>"
        ]

    with start_waitress(app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        result = crawl_js(f"http://{host}:{port}/", browser=browser, limits=FAST)
    assert [path_of(p.url) for p in result.pages] == ["/"]
    assert [s for s in seen if s != "GET /favicon.ico"] == ["GET /robots.txt", "GET /"]


def test_a_start_page_that_is_not_html_is_one_error(browser: Browser) -> None:
    with start_waitress(_bad_app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        with pytest.raises(RemoteProtocolError, match="not an HTML page"):
            crawl_js(f"http://{host}:{port}/json", browser=browser, limits=FAST)
        with pytest.raises(RemoteProtocolError, match="answered 404"):
            crawl_js(f"http://{host}:{port}/missing", browser=browser, limits=FAST)


def test_the_browser_scraper_types_the_login_and_gets_the_same_rows(browser: Browser) -> None:
    with local_site() as site:
        result = scrape_in_browser(
            site.url("/account/"), browser, user="brandon", password="abc123", parser="lxml"
        )
        assert result.logged_in and result.via == "browser" and result.rows == EXPECTED
        with pytest.raises(LoginRefused):
            scrape_in_browser(site.url("/account/"), browser, user="brandon", password="no")


def test_the_command_crawls_the_labs_site_in_a_browser(
    browser: Browser,
    wirelab_lab: LabState,
    lab_tinysite: ServiceView,
    wirelab_env: dict[str, str],
) -> None:
    done = run_wirelab(
        "web", "crawl", "--js", "--delay", "0", "--json", env=wirelab_env, timeout=180
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["start"].startswith("http://www.example.com:")  # mapped to the lab
    assert document["counts"]["static"] == len(pages.paths("static"))
    assert document["counts"]["js"] == len(pages.paths("js"))


def test_the_browser_follows_no_redirect_off_the_host_or_into_robots_rules(
    browser: Browser,
) -> None:
    from tests.web.test_crawl import _redirecting_app
    from tests.web.test_tinysite import RequestLog, _trap_app

    trap, log = RequestLog(), RequestLog()
    with start_waitress(trap.wrap(_trap_app), listen("127.0.0.1", 0)) as trapped:
        trap_url = f"http://localhost:{trapped.address[1]}/trap"
        app = log.wrap(_redirecting_app(trap_url))
        with start_waitress(app, listen("127.0.0.1", 0)) as server:
            host, port = server.address
            result = crawl_js(f"http://{host}:{port}/", browser=browser, limits=FAST)
    assert [path_of(p.url) for p in result.pages] == ["/"]
    reasons = {path_of(s.url): s.reason for s in result.skipped}
    assert reasons["/away"].startswith("a redirect (") and reasons["/sneak"].startswith("a redir")
    assert trap.seen == [] and "/no/secret.html" not in log.paths()


def test_the_command_scrapes_the_labs_site_in_a_browser(
    browser: Browser, wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab(
        "web", "scrape", "/account/", "-u", "brandon", "--password", "abc123", "--browser",
        "--json", env=wirelab_env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["via"] == "browser" and document["logged_in"]
    assert document["total_paid"] == 365 and len(document["rows"]) == len(EXPECTED)
