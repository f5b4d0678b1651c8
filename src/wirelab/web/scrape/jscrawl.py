"""The JavaScript-aware crawler (F68): a real browser follows links scripts insert, and
submits forms.

The book's ``rscrape2.py`` drove Firefox through Selenium; here Playwright drives the system's
headless Chromium (:mod:`wirelab.web.browser`). Each page is loaded, the crawler waits until
the network is quiet (the page's ``fetch()`` and XHR calls have answered), then reads the
links of the *live* DOM. A page with a form is queued once more per form, to be submitted;
only ``GET`` forms without a password field are submitted (a crawler must not log in, pay
or post), which is what reaches pages that exist only as a form's answer.

Static and script-only pages are told apart from the same visit: the links in the HTML the
server sent (the response body) are "link" edges, the links only the live DOM has are
"script" edges, form answers are "form" edges. After the crawl, the pages reachable from the
start over "link" edges alone are ``static``; every other page read is ``js``.

The politeness of :mod:`wirelab.web.scrape.crawl` holds: robots.txt (read with requests), the
same origin, the cap, the depth, the delay, a timeout per page and a size limit. A route on
the browser context aborts every request off the start's origin, and fetches every request on
it with the crawl's own bounded fetcher (requests), one redirect hop at a time, so neither a
script nor a redirect can take the browser off the host or into robots.txt's rules, and no
page is larger than the limit. The browser sends only GETs: a crawler does not post.
"""

from __future__ import annotations

import collections
import contextlib
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from wirelab.errors import ConfigError, RemoteProtocolError, WirelabError
from wirelab.net.addresses import lab_address
from wirelab.web.scrape.crawl import (
    CrawlLimits,
    CrawlResult,
    FoundPage,
    Progress,
    Robots,
    Skipped,
    _delay,
    _Pacer,
    _queueable,
    _quiet,
)
from wirelab.web.scrape.extract import links
from wirelab.web.scrape.fetch import Fetcher, is_html
from wirelab.web.scrape.urls import canonical, origin, same_host

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response, Route

__all__ = ["browser_args", "crawl_js", "lab_ca_for"]

#: Headers not passed between the browser and our fetcher (hop by hop, or wrong once the
#: body is decoded and re-sent whole).
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "host",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "accept-encoding",
    }
)

#: The longest wait for a page's network to go quiet after it loaded (seconds).
SETTLE_SECONDS = 5.0


def browser_args(start: str) -> tuple[str, ...]:
    """Chromium switches for crawling ``start``: a lab name is mapped to the lab's address."""
    host = urllib.parse.urlsplit(start).hostname or ""
    address = lab_address(host)
    if address is None:
        return ()
    return (f"--host-resolver-rules=MAP {host} {address}",)


def crawl_js(
    start: str,
    *,
    browser: Browser | None = None,
    limits: CrawlLimits | None = None,
    progress: Progress | None = None,
    ca_file: str | None = None,
) -> CrawlResult:
    """Crawl ``start``'s site in a real browser (see the module docstring).

    Without ``browser``, one is started for this crawl (:func:`wirelab.web.browser.lab_browser`,
    trusting ``ca_file``, else the running lab's CA for a lab URL).

    Raises:
        BrowserUnavailable: no browser can run here. ConfigError: a bad start URL.
        Transport and protocol errors: robots.txt or the start page could not be read.
    """
    first = canonical(start)
    if browser is not None:
        return _Crawl(first, browser, limits or CrawlLimits(), progress or _quiet).run()
    from wirelab.web.browser import lab_browser

    with lab_browser(ca_file=ca_file or lab_ca_for(first), args=browser_args(first)) as chromium:
        return _Crawl(first, chromium, limits or CrawlLimits(), progress or _quiet).run()


def lab_ca_for(url: str) -> str | None:
    """The running lab's CA file for an ``https`` URL of a lab name or loopback, else ``None``
    (the browser then trusts what the system trusts)."""
    from wirelab.lab.state import LabState

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https":
        return None
    if lab_address(host) is None and host not in ("localhost", "127.0.0.1", "::1"):
        return None
    try:
        return str(LabState.load().ca)
    except ConfigError:
        return None


class _NotHTML(WirelabError):
    """The browser was asked to show something that is not a page."""


class _NotFollowed(WirelabError):
    """The browser's navigation was aborted by our route (off the host, or robots.txt)."""


class _Crawl:
    def __init__(self, first: str, browser: Browser, limits: CrawlLimits, report: Progress):
        self.first = first
        self.browser = browser
        self.limits = limits
        self.report = report
        self.result = CrawlResult(first, "js")
        self.edges: dict[str, set[str]] = collections.defaultdict(set)  # static edges
        self.found: dict[str, FoundPage] = {}
        self.seen: set[str] = {first}
        self.skipped: set[str] = set()
        self.robots: Robots | None = None
        self.http: Fetcher | None = None
        self.route_errors: dict[str, str] = {}

    def skip(self, url: str, reason: str) -> None:
        if url not in self.skipped:
            self.skipped.add(url)
            self.result.skipped.append(Skipped(url, reason))
            self.report("skip", url, reason)

    def run(self) -> CrawlResult:
        began = time.monotonic()
        try:
            with Fetcher(timeout=self.limits.timeout, max_bytes=self.limits.max_bytes) as http:
                self.http = http
                self.report("get", origin(self.first) + "/robots.txt", "robots.txt")
                self.robots = Robots(self.first, http)
                pacer = _Pacer(_delay(self.limits, self.robots))
                pacer.wait()
                if not self.robots.allowed(self.first):
                    raise ConfigError(f"robots.txt of {origin(self.first)} forbids {self.first}")
                context = self.browser.new_context(accept_downloads=False)
                try:
                    context.route("**/*", self._guard)
                    page = context.new_page()
                    page.set_default_timeout(self.limits.timeout * 1000)
                    self._loop(page, pacer)
                finally:
                    context.close()
            self._classify()
            return self.result
        finally:
            self.result.seconds = time.monotonic() - began

    def _guard(self, route: Route) -> None:
        """Every request of the browser: off the origin, aborted; on it, fetched by us.

        A browser follows a redirect without asking the route again, so every request on
        the origin is fetched here with the crawl's own bounded fetcher, one hop at a time,
        and handed to the browser: a redirect only to where the crawler would go, a page only
        if it is HTML within the size limit. Anything but a GET is aborted (a crawler never
        posts, and a page's script does not post for it). All of the browser's traffic thus
        comes from this process, so Chromium never sees a public page reach into loopback
        (which its Private Network Access rules would refuse).
        """
        request = route.request
        url = request.url
        try:
            target = canonical(url)
        except ConfigError:
            route.abort("blockedbyclient")
            return
        if not same_host(target, self.first):
            route.abort("blockedbyclient")
            return
        navigation = request.is_navigation_request()
        if request.method != "GET" or (
            navigation and self.robots is not None and not self.robots.allowed(target)
        ):
            route.abort("blockedbyclient")
            return
        self._fulfil(route, url, navigation)

    def _fulfil(self, route: Route, url: str, navigation: bool) -> None:
        assert self.http is not None
        sent = {
            k: v
            for k, v in route.request.all_headers().items()
            if k.lower() not in _NOT_FORWARDED and not k.startswith(":")
        }
        self.http.session.cookies.clear()  # the browser's own Cookie header is the truth
        try:
            answer = self.http.get(
                url, html_only=navigation, may_follow=lambda _: False, headers=sent
            )
        except WirelabError as exc:
            self.route_errors[url] = str(exc)
            route.abort("failed")
            return
        if answer.location:
            hop = canonical(answer.location)
            forbidden = navigation and self.robots is not None and not self.robots.allowed(hop)
            if not same_host(hop, self.first) or forbidden:
                route.abort("blockedbyclient")
                return
        elif answer.body is None:
            route.abort("aborted")  # not HTML: reported as such, never downloaded
            return
        headers: dict[str, str] = {}
        for name, value in answer.headers:
            key = name.lower()
            if key in _NOT_FORWARDED:
                continue
            joiner = "\n" if key == "set-cookie" else ", "
            headers[key] = headers[key] + joiner + value if key in headers else value
        route.fulfill(status=answer.status, headers=headers, body=answer.body or b"")

    def _loop(self, page: Page, pacer: _Pacer) -> None:
        # (url, depth, via, parent, form index or -1)
        queue: collections.deque[tuple[str, int, str, str, int]] = collections.deque(
            [(self.first, 0, "start", "", -1)]
        )
        while queue:
            if self.result.requests >= self.limits.max_pages:
                self.result.capped = True
                self.report("skip", queue[0][0], f"the cap of {self.limits.max_pages} pages")
                return
            url, depth, via, parent, form = queue.popleft()
            pacer.wait()
            self.report("get", url, via if form < 0 else f"form {form + 1} of {url}")
            self.result.requests += 1
            try:
                response = self._visit(page, url, form)
            except _NotHTML as exc:
                if url == self.first and form < 0:
                    raise RemoteProtocolError(f"{url} is not an HTML page") from exc
                self.skip(url, str(exc))
                continue
            except _NotFollowed as exc:
                if url == self.first and form < 0:
                    raise RemoteProtocolError(f"{url}: {exc}: not followed") from exc
                self.skip(url, f"a redirect ({exc})")
                continue
            except WirelabError as exc:
                if url == self.first and form < 0:
                    raise
                self.result.errors.append(Skipped(url, str(exc)))
                self.report("error", url, str(exc))
                continue
            final = canonical(page.url)
            if form >= 0:
                if final in self.seen:
                    continue
                self.seen.add(final)
            elif final != url:
                if final in self.seen:
                    if via == "link":
                        self.edges[parent].add(final)
                    continue
                self.seen.add(final)
            if not same_host(final, self.first):
                self.skip(final, "off-host")
                continue
            if via == "link" and parent:
                self.edges[parent].add(final)
            status = response.status if response is not None else 0
            content_type = str(response.headers.get("content-type", "")) if response else ""
            if response is not None and not is_html(content_type):
                if url == self.first and form < 0:
                    raise RemoteProtocolError(f"{url} is not an HTML page ({content_type})")
                self.skip(final, f"not HTML ({content_type.split(';')[0] or 'no type'})")
                continue
            if status >= 400:
                if url == self.first and form < 0:
                    raise RemoteProtocolError(f"{url} answered {status}")
                self.result.errors.append(Skipped(final, f"HTTP {status}"))
                self.report("error", final, f"HTTP {status}")
                continue
            served = self._served_links(response, page.url)
            live = self._live_links(page)
            on_host = 0
            for link, kind in [*((u, "link") for u in served), *((u, "script") for u in live)]:
                target = _queueable(link, self.first, self.skip)
                if target is None:
                    continue
                on_host += 1
                if kind == "link":
                    self.edges[final].add(target)
                if target in self.seen:
                    continue
                if self.robots is not None and not self.robots.allowed(target):
                    self.seen.add(target)
                    self.skip(target, "robots.txt")
                    continue
                if depth + 1 > self.limits.max_depth:
                    continue
                self.seen.add(target)
                queue.append((target, depth + 1, kind, final, -1))
            if depth + 1 <= self.limits.max_depth:
                for index in self._submittable_forms(page):
                    queue.append((final, depth + 1, "form", final, index))
            title = " ".join((page.title() or "").split())[:200]
            found = FoundPage(final, "", via, depth, status, title, on_host)
            self.found[final] = found
            self.result.pages.append(found)
            self.report("page", final, title)

    def _visit(self, page: Page, url: str, form: int) -> Response | None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            response = page.goto(url)
            if form >= 0:
                page.wait_for_load_state("networkidle", timeout=SETTLE_SECONDS * 1000)
                with page.expect_navigation() as navigation:
                    page.locator("form").nth(form).evaluate(
                        "f => (f.requestSubmit ? f.requestSubmit() : f.submit())"
                    )
                response = navigation.value
            self._settle(page)
        except PlaywrightError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if "ERR_BLOCKED_BY_CLIENT" in first:  # our route refused where it led
                raise _NotFollowed("it led off the host or into robots.txt's rules") from exc
            reason = self.route_errors.pop(url, "")
            if reason:  # our fetcher failed for the browser: say why, in its words
                raise RemoteProtocolError(reason) from exc
            if "ERR_ABORTED" in first:  # a download (not shown: accept_downloads is off)
                raise _NotHTML("not HTML (the browser would download it)") from exc
            raise RemoteProtocolError(f"the browser failed on {url}: {first[:200]}") from exc
        if response is not None:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.limits.max_bytes:
                raise RemoteProtocolError(
                    f"{url} is {length} bytes, over the limit of {self.limits.max_bytes}"
                )
        return response

    def _settle(self, page: Page) -> None:
        from playwright.sync_api import Error as PlaywrightError

        with contextlib.suppress(PlaywrightError):  # a page that keeps polling: read it as is
            page.wait_for_load_state("networkidle", timeout=SETTLE_SECONDS * 1000)

    def _served_links(self, response: Response | None, url: str) -> list[str]:
        from playwright.sync_api import Error as PlaywrightError

        if response is None:
            return []
        try:
            body = response.body()
        except PlaywrightError:
            return []
        if len(body) > self.limits.max_bytes:
            raise RemoteProtocolError(f"{url} is over the limit of {self.limits.max_bytes} bytes")
        return links(body.decode("utf-8", "replace"), url)

    @staticmethod
    def _live_links(page: Page) -> list[str]:
        found: Any = page.eval_on_selector_all("a[href]", "anchors => anchors.map(a => a.href)")
        return [str(u) for u in found if isinstance(u, str)]

    @staticmethod
    def _submittable_forms(page: Page) -> list[int]:
        found: Any = page.eval_on_selector_all(
            "form",
            """forms => forms.map((f, i) => [i, (f.method || 'get').toLowerCase(),
                !!f.querySelector('input[type=password]')])""",
        )
        return [int(i) for i, method, secret in found if method == "get" and not secret]

    def _classify(self) -> None:
        static = {self.first}
        frontier = [self.first]
        while frontier:
            url = frontier.pop()
            for target in self.edges.get(url, ()):
                if target not in static:
                    static.add(target)
                    frontier.append(target)
        for page in self.result.pages:
            page.kind = "static" if page.url in static else "js"
