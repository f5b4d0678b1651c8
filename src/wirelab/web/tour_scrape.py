"""Chapter 11 tour steps (scrape); they join :data:`wirelab.web.chapter.CHAPTER11`.

The login-aware scraper on the lab's test site (both parsers, the same rows), the static
crawler (the manifest's static pages, robots.txt obeyed, the off-host link left alone), then
the JavaScript crawler in Chromium (the script- and form-only pages too), skipped with the
one-line reason where Chromium cannot run (a failure under ``WIRELAB_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

from wirelab.lab.tour import TourContext
from wirelab.web.chapter import CHAPTER11

__all__ = ["CHAPTER11"]

#: Seconds the browser crawl may take (a launch and some twenty page loads; more under load).
JS_CRAWL_TIMEOUT = 150.0


def _site(ctx: TourContext) -> str:
    ep = ctx.lab.endpoint("tinysite", "http")
    return f"http://{ep.address}:{ep.port}"


@CHAPTER11.step("the scraper logs in to the test site; BeautifulSoup and lxml read the same rows")
def _scrape(ctx: TourContext) -> None:
    from wirelab.web.scrape.fetch import Fetcher
    from wirelab.web.scrape.login import scrape

    account = ctx.lab.account
    url = _site(ctx) + "/account/"
    results = {}
    for parser in ("bs4", "lxml"):
        with Fetcher() as fetcher:  # a new session each time: each logs in
            results[parser] = scrape(
                url, user=account.user, password=account.password, parser=parser, fetcher=fetcher
            )
    soup = results["bs4"]
    ctx.say(f"GET {url} -> the login form; POST it as {account.user} -> {soup.url}")
    for row in soup.rows:
        ctx.say(f"  {row.direction:4} ${row.dollars:<5} {row.account:5} {row.memo}")
    ctx.say(f"paid ${soup.total_paid}, received ${soup.total_received}; lxml: the same rows")
    ctx.check(soup.logged_in and soup.rows, "the scraper did not get past the login")
    ctx.check(soup.rows == results["lxml"].rows, "BeautifulSoup and lxml read different rows")


@CHAPTER11.step("the static crawler finds the static pages, obeys robots.txt, stays on the host")
def _crawl(ctx: TourContext) -> None:
    from wirelab.web.scrape.crawl import CrawlLimits, crawl
    from wirelab.web.scrape.urls import path_of
    from wirelab.web.tinysite import pages

    result = crawl(_site(ctx) + "/", limits=CrawlLimits(delay=0.05))
    found = {path_of(u) for u in result.urls("static")}
    ctx.say(
        f"{len(found)} static pages in {result.requests} requests "
        f"(the manifest has {len(pages.paths('static'))}); "
        f"skipped: {', '.join(sorted({s.reason for s in result.skipped}))}"
    )
    ctx.check(found == pages.paths("static"), f"the crawl found {sorted(found)}")
    ctx.check(
        any(path_of(u) == "/private/staff.html" for u in result.skipped_for("robots.txt")),
        "robots.txt's Disallow was not noticed",
    )
    ctx.check(result.skipped_for("off-host"), "the off-host link was not seen as off-host")


@CHAPTER11.step(
    "the JavaScript crawler in Chromium also finds the script- and form-only pages",
    timeout=JS_CRAWL_TIMEOUT,
)
def _crawl_js(ctx: TourContext) -> None:
    from wirelab.web.browser import unavailable_reason
    from wirelab.web.scrape.crawl import CrawlLimits
    from wirelab.web.scrape.jscrawl import crawl_js
    from wirelab.web.scrape.urls import path_of
    from wirelab.web.tinysite import pages

    why = unavailable_reason()
    if why is not None:
        ctx.skip(why)
    result = crawl_js(_site(ctx) + "/", limits=CrawlLimits(delay=0))
    static = {path_of(u) for u in result.urls("static")}
    script = {path_of(u) for u in result.urls("js")}
    ctx.say(
        f"{len(static)} static pages and {len(script)} JavaScript-only pages "
        f"(the manifest: {len(pages.paths('static'))} and {len(pages.paths('js'))})"
    )
    for page in result.pages:
        if page.kind == "js":
            ctx.say(f"  js via {page.via:6} {path_of(page.url)}")
    ctx.check(static == pages.paths("static"), f"static pages: {sorted(static)}")
    ctx.check(script == pages.paths("js"), f"JavaScript-only pages: {sorted(script)}")
