"""The static crawler (F67) against the test site: the manifest's static pages, exactly, and
its politeness (robots.txt, the host, the cap, the depth, the delay) proven by the site's own
request log; bad input is one clear error; the CLI; HTTPS verified with the lab CA.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import run_wirelab
from tests.web.test_scrape import _bad_app, _close_early
from tests.web.test_tinysite import LocalSite, local_site
from wirelab.errors import Broken, ConfigError, RemoteProtocolError
from wirelab.http.server import listen, start_waitress
from wirelab.lab.state import LabState, ServiceView
from wirelab.web.scrape.crawl import CrawlLimits, crawl
from wirelab.web.scrape.urls import canonical, path_of
from wirelab.web.tinysite import pages

FAST = CrawlLimits(delay=0)


@pytest.fixture(scope="module")
def served() -> Iterator[LocalSite]:
    with local_site() as one:
        yield one


@pytest.fixture
def site(served: LocalSite) -> LocalSite:
    served.log.clear()
    served.trap.clear()
    return served


def test_the_crawl_finds_exactly_the_static_pages(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=FAST)
    found = {path_of(u) for u in result.urls("static")}
    assert found == pages.paths("static")
    assert result.count("js") == 0 and not result.capped and not result.errors
    assert result.urls() == {site.url(p) for p in pages.paths("static")}
    # what a static crawler cannot reach, it did not ask for
    requested = set(site.log.targets())
    assert not requested & (pages.paths("js") - {"/js/"})


def test_robots_txt_is_read_first_and_obeyed(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=FAST)
    assert site.log.paths()[0] == "/robots.txt"
    assert not [p for p in site.log.paths() if p.startswith("/private/")]
    assert site.url("/private/staff.html") in result.skipped_for("robots.txt")


def test_off_host_links_are_not_fetched(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=FAST)
    assert canonical(site.trap_url) in result.skipped_for("off-host")
    assert site.trap.seen == []


def test_each_page_is_requested_once_whatever_its_variants(site: LocalSite) -> None:
    crawl(site.url("/"), limits=FAST)
    counts = Counter(
        canonical(site.url(t)) for m, t in site.log.seen if m == "GET" and t != "/robots.txt"
    )
    assert counts[site.url("/catalog/?page=2&sort=name")] == 1  # ?sort=name&page=2#top too
    assert counts[site.url("/about.html")] == 1  # about.html#team too
    assert counts[site.url("/news.html")] == 1  # /news.html? too
    assert max(counts.values()) == 1


def test_a_body_that_is_not_html_is_not_read(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=FAST)
    assert result.skipped_for("not HTML (text/csv)") == {site.url("/files/prices.csv")}


def test_the_page_cap_stops_the_crawl(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=CrawlLimits(delay=0, max_pages=3))
    assert result.capped and result.requests == 3 and len(result.pages) == 3
    assert len([p for p in site.log.paths() if p != "/robots.txt"]) == 3


def test_the_depth_limit_stops_at_the_start_page(site: LocalSite) -> None:
    result = crawl(site.url("/"), limits=CrawlLimits(delay=0, max_depth=0))
    assert [path_of(p.url) for p in result.pages] == ["/"]
    assert site.log.paths() == ["/robots.txt", "/"]


def test_the_delay_spaces_the_requests(site: LocalSite) -> None:
    began = time.monotonic()
    result = crawl(site.url("/"), limits=CrawlLimits(delay=0.2, max_pages=4))
    took = time.monotonic() - began
    assert result.requests == 4
    assert took >= 4 * 0.2 - 0.05  # robots.txt, then four pages, 0.2 s apart


def test_a_crawl_delay_in_robots_txt_wins_and_one_over_the_limit_stops_the_crawl() -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        body = b"User-agent: *\nCrawl-delay: 1\n"
        if environ["PATH_INFO"] != "/robots.txt":
            body = b"<a href='/a'>a</a><a href='/b'>b</a>"
        kind = "text/plain" if environ["PATH_INFO"] == "/robots.txt" else "text/html"
        start_response("200 OK", [("Content-Type", kind)])  # type: ignore[operator]
        return [body]

    with start_waitress(app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        began = time.monotonic()
        result = crawl(f"http://{host}:{port}/", limits=CrawlLimits(delay=0))
        assert result.requests == 3 and time.monotonic() - began >= 3 * 1.0 - 0.05
        with pytest.raises(RemoteProtocolError, match=r"over our limit of 0\.5 s"):
            crawl(f"http://{host}:{port}/", limits=CrawlLimits(delay=0, max_delay=0.5))


# -- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad() -> Iterator[str]:
    with start_waitress(_bad_app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        yield f"http://{host}:{port}"


def test_a_start_page_that_is_not_html_is_one_error(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match=r"is not an HTML page \(application/json\)"):
        crawl(bad + "/json", limits=FAST)


def test_a_huge_start_page_is_one_error(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match="over the limit of 262144 bytes"):
        crawl(bad + "/big", limits=CrawlLimits(delay=0, max_bytes=256 * 1024))


def test_a_redirect_loop_is_one_error(bad: str) -> None:
    with pytest.raises(RemoteProtocolError, match="a redirect loop"):
        crawl(bad + "/loop-a", limits=FAST)


def test_a_server_that_closes_early_is_one_error() -> None:
    from tests.conftest import accept_loop

    with accept_loop(_close_early) as (host, port), pytest.raises(Broken, match="closed the"):
        crawl(f"http://{host}:{port}/", limits=FAST)


def test_bad_pages_later_in_a_crawl_are_recorded_and_the_crawl_goes_on() -> None:
    links = "".join(
        f"<a href='{p}'>{p}</a>" for p in ("/loop-a", "/big", "/missing", "/json", "/fine")
    )

    def app(environ: dict[str, object], start_response: object) -> object:
        if environ["PATH_INFO"] == "/":
            start_response("200 OK", [("Content-Type", "text/html")])  # type: ignore[operator]
            return [links.encode()]
        return _bad_app(environ, start_response)

    with start_waitress(app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        base = f"http://{host}:{port}"
        result = crawl(base + "/", limits=CrawlLimits(delay=0, max_bytes=256 * 1024))
    assert {path_of(p.url) for p in result.pages} == {"/", "/fine"}
    errors = {path_of(e.url): e.reason for e in result.errors}
    assert "a redirect loop" in errors["/loop-a"]
    assert "over the limit" in errors["/big"]
    assert errors["/missing"] == "HTTP 404"
    assert result.skipped_for("not HTML (application/json)") == {base + "/json"}


def test_a_robots_txt_that_fails_with_5xx_stops_the_crawl() -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"busy"]

    with start_waitress(app, listen("127.0.0.1", 0)) as server:
        host, port = server.address
        with pytest.raises(RemoteProtocolError, match="answered 503: a polite crawler"):
            crawl(f"http://{host}:{port}/", limits=FAST)


@pytest.mark.parametrize("url", ["", "mailto:x@example.com", "http://", "https://h:0x/"])
def test_a_bad_start_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        crawl(url, limits=FAST)


@pytest.mark.parametrize(
    "limits",
    [{"max_pages": 0}, {"max_depth": -1}, {"timeout": 0}, {"delay": -1}, {"delay": 100}],
)
def test_bad_limits_are_config_errors(limits: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        CrawlLimits(**limits)  # type: ignore[arg-type]


# -- the command ------------------------------------------------------------------------------


def test_the_command_reports_the_pages_as_json(site: LocalSite) -> None:
    done = run_wirelab("web", "crawl", site.url("/"), "--delay", "0", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["counts"]["static"] == len(pages.paths("static"))
    assert document["counts"]["js"] == 0 and not document["capped"]
    assert {path_of(p["url"]) for p in document["pages"]} == pages.paths("static")


def test_the_command_prints_the_pages_and_the_cap(site: LocalSite) -> None:
    done = run_wirelab("web", "crawl", site.url("/"), "--delay", "0", "--max-pages", "2")
    assert done.returncode == 0, done.stderr
    assert "2 static pages, 0 JavaScript-only, 2 requests" in done.stdout
    assert "(stopped at the page cap)" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["http://127.0.0.1:1/", "--max-pages", "0"],
        ["http://127.0.0.1:1/", "--delay", "-1"],
        ["http://127.0.0.1:1/", "--delay", "nan"],
        ["http://127.0.0.1:1/", "--depth", "-1"],
        ["http://127.0.0.1:1/", "-t", "inf"],
    ],
)
def test_command_usage_errors_exit_2(args: list[str]) -> None:
    done = run_wirelab("web", "crawl", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)


def test_command_failures_are_one_line_and_exit_1(bad: str) -> None:
    for url, words in [(bad + "/json", "not an HTML page"), (bad + "/loop-a", "redirect loop")]:
        done = run_wirelab("web", "crawl", url, "--delay", "0")
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("wirelab: error:") and words in lines[0]


def test_the_command_crawls_the_labs_site(
    wirelab_lab: LabState, lab_tinysite: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("web", "crawl", "--delay", "0", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    port = lab_tinysite.endpoint("http").port
    assert document["start"] == f"http://www.example.com:{port}/"
    assert {path_of(p["url"]) for p in document["pages"]} == pages.paths("static")


def test_https_pages_are_verified_with_the_lab_ca(
    wirelab_lab: LabState, lab_www: ServiceView, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRELAB_HOME", wirelab_lab.directory)
    port = lab_www.endpoint("https").port
    start = f"https://www.example.com:{port}/links/4/0"  # httpbin: four pages linking each other
    result = crawl(start, limits=CrawlLimits(delay=0, max_depth=1))
    assert {path_of(p.url) for p in result.pages} == {f"/links/4/{i}" for i in range(4)}
    # the same crawl with a context that does not trust the lab CA fails on the certificate
    from wirelab.errors import TLSError
    from wirelab.net.tlsctx import client_context
    from wirelab.web.scrape.fetch import Fetcher

    untrusting = Fetcher(ssl_context=client_context())
    with untrusting, pytest.raises(TLSError, match="certificate verify failed"):
        crawl(start, limits=FAST, fetcher=untrusting)


def test_a_terminal_gets_a_progress_line_and_json_does_not(site: LocalSite) -> None:
    import os

    terminal = dict(os.environ, FORCE_COLOR="1")  # rich draws as on a terminal
    done = run_wirelab("web", "crawl", site.url("/"), "--delay", "0.05", env=terminal)
    assert done.returncode == 0, done.stderr
    assert "9 pages read" in done.stderr and "GET http://" in done.stderr
    done = run_wirelab("web", "crawl", site.url("/"), "--delay", "0", "--json", env=terminal)
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["counts"]["static"] == 9


def _redirecting_app(trap_url: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/robots.txt":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"User-agent: *\nDisallow: /no/\n"]
        if path == "/away":
            start_response("302 Found", [("Location", trap_url)])
            return [b""]
        if path == "/sneak":
            start_response("302 Found", [("Location", "/no/secret.html")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<a href='/away'>away</a> <a href='/sneak'>sneak</a>"]

    return app


def test_redirects_off_the_host_or_into_robots_rules_are_not_followed() -> None:
    from tests.web.test_tinysite import RequestLog, _trap_app

    trap, log = RequestLog(), RequestLog()
    with start_waitress(trap.wrap(_trap_app), listen("127.0.0.1", 0)) as trapped:
        trap_url = f"http://localhost:{trapped.address[1]}/trap"
        app = log.wrap(_redirecting_app(trap_url))
        with start_waitress(app, listen("127.0.0.1", 0)) as server:
            host, port = server.address
            result = crawl(f"http://{host}:{port}/", limits=FAST)
    assert {s.url: s.reason for s in result.skipped} == {
        canonical(trap_url): f"a redirect from http://{host}:{port}/away (off-host)",
        f"http://{host}:{port}/no/secret.html": f"a redirect from http://{host}:{port}/sneak "
        "(robots.txt)",
    }
    assert trap.seen == [] and "/no/secret.html" not in log.paths()
