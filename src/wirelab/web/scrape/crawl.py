"""The same-host recursive crawler for static links (F67), polite and bounded.

Breadth first from the start URL, over ``<a href>`` links of the HTML the server sends,
staying on the start URL's origin (scheme, host and port). What the book's ``rscrape1.py``
lacked is here, each a parameter of :class:`CrawlLimits`:

* a **page cap** (``max_pages`` requests at most) and a **depth** limit;
* a **timeout** per request and a **page size** limit (a body that is not HTML is not read);
* **robots.txt** obeyed (RFC 9309: a 4xx robots.txt allows everything, a 5xx or an
  unreachable one forbids everything) for every page and every redirect hop;
* a **politeness delay** between requests (robots.txt's ``Crawl-delay`` wins if longer);
* **one canonical URL per page** (:func:`wirelab.web.scrape.urls.canonical`), so fragments
  and query-order variants are fetched once; the queue keeps the order links were found.

A failing page is recorded (:attr:`CrawlResult.errors`) and the crawl goes on; only a start
page that cannot be read is an error. :func:`crawl` reports each step to ``progress``.
"""

from __future__ import annotations

import collections
import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from wirelab.errors import ConfigError, RemoteProtocolError, WirelabError
from wirelab.web.scrape.extract import links, title
from wirelab.web.scrape.fetch import USER_AGENT, Fetcher
from wirelab.web.scrape.urls import MAX_URL_CHARS, canonical, origin, same_host

__all__ = [
    "CrawlLimits",
    "CrawlResult",
    "FoundPage",
    "Progress",
    "Robots",
    "Skipped",
    "crawl",
]


@dataclass(frozen=True)
class CrawlLimits:
    """How far and how fast a crawl may go.

    Attributes:
        max_pages: the most requests for pages (the cap).
        max_depth: the most links from the start page (0: the start page only).
        timeout: seconds for each connection and each read.
        max_bytes: the largest page read.
        delay: seconds between two requests (at least; robots.txt may ask for more).
        max_delay: the longest ``Crawl-delay`` from robots.txt honoured (a longer one stops
            the crawl with an error rather than hanging for hours).
    """

    max_pages: int = 100
    max_depth: int = 10
    timeout: float = 10.0
    max_bytes: int = 2 * 1024 * 1024
    delay: float = 0.1
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_pages < 1 or self.max_depth < 0:
            raise ConfigError("max_pages must be at least 1 and max_depth at least 0")
        if not self.timeout > 0 or self.max_bytes < 1:
            raise ConfigError("the timeout and max_bytes must be above zero")
        if not 0 <= self.delay <= self.max_delay:
            raise ConfigError(f"the delay must be between 0 and {self.max_delay:g} seconds")


@dataclass
class FoundPage:
    """A page the crawl read.

    Attributes:
        url: its canonical URL.
        kind: ``static`` (reached by links in served HTML) or ``js`` (only with JavaScript).
        via: how it was first reached: ``start``, ``link``, ``script`` or ``form``.
        depth: links from the start page.
        status: the HTTP status.
        title: its ``<title>``.
        links: how many same-host links it had.
    """

    url: str
    kind: str
    via: str
    depth: int
    status: int
    title: str
    links: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A URL the crawl did not read, and why (``robots.txt``, ``off-host``, ``not HTML`` ...)."""

    url: str
    reason: str


@dataclass
class CrawlResult:
    """Everything a crawl found."""

    start: str
    mode: str
    pages: list[FoundPage] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[Skipped] = field(default_factory=list)
    requests: int = 0
    capped: bool = False
    seconds: float = 0.0

    def urls(self, kind: str | None = None) -> set[str]:
        """The canonical URLs of the pages found (of one ``kind`` if given)."""
        return {p.url for p in self.pages if kind is None or p.kind == kind}

    def count(self, kind: str) -> int:
        """How many pages of ``kind`` were found."""
        return sum(1 for p in self.pages if p.kind == kind)

    def skipped_for(self, reason: str) -> set[str]:
        """The URLs skipped for ``reason``."""
        return {s.url for s in self.skipped if s.reason == reason}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "start": self.start,
            "mode": self.mode,
            "counts": {
                "static": self.count("static"),
                "js": self.count("js"),
                "skipped": len(self.skipped),
                "errors": len(self.errors),
            },
            "requests": self.requests,
            "capped": self.capped,
            "seconds": round(self.seconds, 3),
            "pages": [p.to_json() for p in self.pages],
            "skipped": [asdict(s) for s in self.skipped],
            "errors": [asdict(s) for s in self.errors],
        }


#: ``progress(event, url, detail)``: ``"get"`` before a request, ``"page"`` after a page,
#: ``"skip"`` and ``"error"`` as they happen.
Progress = Callable[[str, str, str], None]


def _quiet(event: str, url: str, detail: str) -> None:
    del event, url, detail


class Robots:
    """robots.txt of one origin, read once through ``fetcher``."""

    def __init__(self, start: str, fetcher: Fetcher, user_agent: str = USER_AGENT) -> None:
        self.url = origin(start) + "/robots.txt"
        self.user_agent = user_agent
        self.status = 0
        self._parser = urllib.robotparser.RobotFileParser(self.url)
        answer = fetcher.get(self.url, html_only=False, may_follow=lambda u: same_host(u, start))
        self.status = answer.status
        if answer.status >= 500:
            raise RemoteProtocolError(
                f"{self.url} answered {answer.status}: a polite crawler takes that as "
                "'crawl nothing' (RFC 9309) and stops"
            )
        if answer.status >= 300:  # 4xx, or a redirect off the host: no rules
            self._parser.parse([])  # no rules: everything allowed
        else:
            self._parser.parse(answer.text().splitlines())

    def allowed(self, url: str) -> bool:
        """May ``url`` be fetched?"""
        return self._parser.can_fetch(self.user_agent, url)

    def crawl_delay(self) -> float:
        """robots.txt's ``Crawl-delay`` for us (0 if none)."""
        value = self._parser.crawl_delay(self.user_agent)
        return float(value) if value else 0.0


class _Pacer:
    """Keeps at least ``delay`` seconds between the starts of two requests."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._last = -1e9

    def wait(self) -> None:
        pause = self._last + self.delay - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last = time.monotonic()


def crawl(
    start: str,
    *,
    limits: CrawlLimits | None = None,
    progress: Progress | None = None,
    fetcher: Fetcher | None = None,
) -> CrawlResult:
    """Crawl ``start``'s site by static links (see the module docstring).

    Raises:
        ConfigError: a bad start URL. Transport and protocol errors: the start page or
            robots.txt could not be read.
    """
    limits = limits or CrawlLimits()
    report = progress or _quiet
    first = canonical(start)
    began = time.monotonic()
    own = fetcher is None
    session = fetcher or Fetcher(timeout=limits.timeout, max_bytes=limits.max_bytes)
    result = CrawlResult(first, "static")
    try:
        report("get", origin(first) + "/robots.txt", "robots.txt")
        robots = Robots(first, session)
        delay = _delay(limits, robots)
        pacer = _Pacer(delay)
        pacer.wait()  # the robots.txt request counts
        if not robots.allowed(first):
            raise ConfigError(f"robots.txt of {origin(first)} forbids {first}")
        queue: collections.deque[tuple[str, int, str]] = collections.deque([(first, 0, "start")])
        seen = {first}
        skipped: set[str] = set()

        def skip(url: str, reason: str) -> None:
            if url not in skipped:
                skipped.add(url)
                result.skipped.append(Skipped(url, reason))
                report("skip", url, reason)

        while queue:
            if result.requests >= limits.max_pages:
                result.capped = True
                report("skip", queue[0][0], f"the cap of {limits.max_pages} pages")
                break
            url, depth, via = queue.popleft()
            pacer.wait()
            report("get", url, via)
            result.requests += 1
            try:
                fetched = session.get(url, may_follow=lambda u: _may_follow(u, first, robots, seen))
            except WirelabError as exc:
                if url == first:
                    raise
                result.errors.append(Skipped(url, str(exc)))
                report("error", url, str(exc))
                continue
            if fetched.location:
                target = canonical(fetched.location)
                if url == first:
                    raise RemoteProtocolError(
                        f"{first} redirects to {target}, off the host or forbidden by "
                        "robots.txt: start the crawl there"
                    )
                if target not in seen:  # else: a page already queued or read, not twice
                    why = "robots.txt" if same_host(target, first) else "off-host"
                    skip(target, f"a redirect from {url} ({why})")
                continue
            final = canonical(fetched.url)
            if final != url:
                if final in seen and fetched.hops:
                    continue  # a redirect to a page already queued or read
                seen.add(final)
            if fetched.body is None:
                if url == first:
                    kind = fetched.content_type.split(";")[0] or "no Content-Type"
                    raise RemoteProtocolError(f"{url} is not an HTML page ({kind})")
                skip(final, f"not HTML ({fetched.content_type.split(';')[0] or 'no type'})")
                continue
            if fetched.status >= 400:
                if url == first:
                    raise RemoteProtocolError(f"{url} answered {fetched.status}")
                result.errors.append(Skipped(final, f"HTTP {fetched.status}"))
                report("error", final, f"HTTP {fetched.status}")
                continue
            text = fetched.text()
            on_host = 0
            for link in links(text, fetched.url):
                found = _queueable(link, first, skip)
                if found is None:
                    continue
                on_host += 1
                if found in seen:
                    continue
                if not robots.allowed(found):
                    seen.add(found)
                    skip(found, "robots.txt")
                    continue
                if depth + 1 > limits.max_depth:
                    continue
                seen.add(found)
                queue.append((found, depth + 1, "link"))
            page = FoundPage(final, "static", via, depth, fetched.status, title(text), on_host)
            result.pages.append(page)
            report("page", final, page.title)
        return result
    finally:
        result.seconds = time.monotonic() - began
        if own:
            session.close()


def _delay(limits: CrawlLimits, robots: Robots) -> float:
    asked = robots.crawl_delay()
    if asked > limits.max_delay:
        raise RemoteProtocolError(
            f"robots.txt asks for {asked:g} s between requests, over our limit of "
            f"{limits.max_delay:g} s: not crawling"
        )
    return max(limits.delay, asked)


def _may_follow(url: str, first: str, robots: Robots, seen: set[str]) -> bool:
    """May a redirect to ``url`` be followed? Same host, robots.txt allows, not seen yet."""
    target = canonical(url)
    return same_host(target, first) and robots.allowed(target) and target not in seen


def _queueable(link: str, first: str, skip: Callable[[str, str], None]) -> str | None:
    """The canonical form of a same-host http(s) link, else ``None`` (off-host ones noted)."""
    scheme = link.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        return None  # mailto:, javascript:, tel: ...: not pages
    if len(link) > MAX_URL_CHARS:
        return None
    try:
        target = canonical(link)
    except ConfigError:
        return None
    if not same_host(target, first):
        skip(target, "off-host")
        return None
    return target
