"""``wirelab web scrape`` and ``wirelab web crawl`` (chapter 11, F64-F68).

See :mod:`wirelab.web.cli`.

Both take a URL; without one (or with a path such as ``/account/``) they use the running lab's
test site (``tinysite`` on ``www.example.com``). A URL that is not ``http(s)://HOST/...`` is a
usage error (exit 2); a page that cannot be read is one line and exit 1.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from wirelab.cli.common import JsonOption, TimeoutOption, console, err_console, print_json

__all__ = ["register"]

#: Where ``--password`` may come from instead (a command line is visible to every user).
PASSWORD_ENV = "WIRELAB_SCRAPE_PASSWORD"  # noqa: S105 (a variable name, not a secret)

UrlArgument = Annotated[
    str | None,
    typer.Argument(
        help="The page to start at: http(s)://HOST[:PORT]/PATH, or a /PATH of the running "
        "lab's test site. Default: the test site's home page.",
        show_default=False,
    ),
]


def _target(url: str | None, default_path: str) -> str:
    """The absolute URL to use (a usage error if it is not one)."""
    from wirelab.errors import ConfigError
    from wirelab.web.scrape.urls import check_url

    text = default_path if url is None else url
    if text.startswith("/"):
        from wirelab.cli.common import lab_state

        state = lab_state()
        if state is None:
            raise typer.BadParameter(
                f"{text!r} is a path of the lab's test site, and no lab is running "
                "(start one with: wirelab lab up, or give a whole URL)",
                param_hint="URL",
            )
        try:
            ep = state.endpoint("tinysite", "http")
        except ConfigError as exc:
            raise typer.BadParameter(
                f"the running lab has no test site: {exc}", param_hint="URL"
            ) from exc
        text = f"http://{ep.host}:{ep.port}{text}"
    try:
        return check_url(text)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="URL") from exc


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app`` (the ``wirelab web`` group)."""
    app.command("scrape")(scrape)
    app.command("crawl")(crawl)


def scrape(
    url: UrlArgument = None,
    parser: Annotated[
        str,
        typer.Option(
            "--parser",
            help="Extract with BeautifulSoup (bs4) or lxml and CSS selectors (lxml).",
            case_sensitive=False,
        ),
    ] = "bs4",
    user: Annotated[
        str | None, typer.Option("-u", "--user", help="The account to log in as, if asked.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help=f"Its password (or set {PASSWORD_ENV}).",
            envvar=PASSWORD_ENV,
            show_envvar=False,
        ),
    ] = None,
    browser: Annotated[
        bool,
        typer.Option("--browser", help="Log in and read the page in headless Chromium."),
    ] = False,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Log in where the page asks, then list its payments (the book's mscrape.py)."""
    from rich.table import Table

    from wirelab.web.scrape.extract import Parser
    from wirelab.web.scrape.login import scrape as run_scrape
    from wirelab.web.scrape.login import scrape_in_browser

    kind: Parser = "lxml" if parser.lower() == "lxml" else "bs4"
    if parser.lower() not in ("bs4", "lxml"):
        raise typer.BadParameter(f"{parser!r}: choose bs4 or lxml", param_hint="--parser")
    target = _target(url, "/account/")
    if user is not None and password is None:
        raise typer.BadParameter(f"--user needs --password (or {PASSWORD_ENV})")
    if browser:
        from wirelab.web.browser import lab_browser
        from wirelab.web.scrape.jscrawl import browser_args, lab_ca_for

        with lab_browser(ca_file=lab_ca_for(target), args=browser_args(target)) as chromium:
            result = scrape_in_browser(
                target, chromium, user=user, password=password, parser=kind, timeout=timeout
            )
    else:
        from wirelab.web.scrape.fetch import Fetcher

        with Fetcher(timeout=timeout) as fetcher:
            result = run_scrape(target, user=user, password=password, parser=kind, fetcher=fetcher)
    if json_out:
        print_json(result.to_json())
        return
    how = f"logged in as {user}, " if result.logged_in else ""
    console.print(f"{result.url}: {how}{len(result.rows)} payments (parsed with {kind})")
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("dollars", justify="right")
    table.add_column("account")
    table.add_column("memo")
    for row in result.rows:
        table.add_row(row.direction, str(row.dollars), row.account, row.memo)
    console.print(table)
    console.print(f"paid {result.total_paid} dollars, received {result.total_received}")


def crawl(
    url: UrlArgument = None,
    js: Annotated[
        bool,
        typer.Option("--js", help="Crawl in headless Chromium: run scripts, submit GET forms."),
    ] = False,
    delay: Annotated[
        float,
        typer.Option("--delay", help="Seconds between requests (robots.txt may ask for more)."),
    ] = 0.1,
    max_pages: Annotated[
        int, typer.Option("--max-pages", help="The most pages to request.", min=1)
    ] = 100,
    depth: Annotated[
        int, typer.Option("--depth", help="The most links away from the start page.", min=0)
    ] = 10,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Crawl a site's pages on one host, politely (the book's rscrape1.py and rscrape2.py)."""
    import math

    from wirelab.web.scrape.crawl import CrawlLimits
    from wirelab.web.scrape.crawl import crawl as run_crawl

    if not math.isfinite(delay) or not 0 <= delay <= 30:
        raise typer.BadParameter(
            f"{delay} is not a number of seconds from 0 to 30", param_hint="--delay"
        )
    target = _target(url, "/")
    limits = CrawlLimits(max_pages=max_pages, max_depth=depth, timeout=timeout, delay=delay)
    show = not json_out and err_console.is_terminal and not os.environ.get("WIRELAB_NO_PROGRESS")
    with _progress(show) as report:
        if js:
            from wirelab.web.scrape.jscrawl import crawl_js

            result = crawl_js(target, limits=limits, progress=report)
        else:
            result = run_crawl(target, limits=limits, progress=report)
    if json_out:
        print_json(result.to_json())
        return
    mode = "in a browser" if js else "by static links"
    console.print(
        f"crawled {result.start} {mode}: {result.count('static')} static pages, "
        f"{result.count('js')} JavaScript-only, {result.requests} requests in "
        f"{result.seconds:.1f} s" + (" (stopped at the page cap)" if result.capped else "")
    )
    for page in result.pages:
        console.print(f"  {page.kind:6} {page.via:6} {page.url}  {page.title}")
    for item in result.skipped:
        console.print(f"  skipped {item.url}: {item.reason}")
    for item in result.errors:
        console.print(f"  failed  {item.url}: {item.reason}")


class _progress:
    """A rich progress line on stderr while a crawl runs (nothing when ``show`` is false)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.pages = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.show:
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[pages]} pages"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("starting", pages=0)
        return self.report

    def report(self, event: str, url: str, detail: str) -> None:
        if event == "page":
            self.pages += 1
        text = {"get": "GET", "page": "read", "skip": "skip", "error": "fail"}.get(event, event)
        self._bar.update(self._task, description=f"{text} {url}"[:100], pages=self.pages)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
