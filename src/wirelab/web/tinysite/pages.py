"""The test site's pages and its manifest: which page a visitor can reach, and how.

The manifest (:data:`PAGES`) is the truth the crawler tests compare a crawl with. Each page is
named by its *canonical* address (path and sorted query, no fragment: what
:func:`wirelab.web.scrape.urls.canonical` makes of any link to it) and has a kind:

``static``
    reachable from ``/`` by following ``<a href>`` links in the HTML the server sends;
``js``
    reachable only with JavaScript: its link is inserted by a script after a ``fetch()`` of
    ``/data/links.json``, or it is the answer to submitting a form, or it is linked only
    from such a page;
``login``
    behind the form login (``/login``): without the session cookie it redirects there;
``robots``
    linked from a static page but forbidden by ``/robots.txt``: a polite crawler never asks.

Besides pages there are :data:`RESOURCES` that are not HTML (robots.txt, the script, the JSON,
a CSV file a static page links to), and :data:`OFFSITE_LINK` pages link off the host. Several
links are variants of one page (a fragment, the query's order, an empty query), which a
crawler must count once.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACCOUNT_PAYMENTS",
    "OFFSITE_LINK",
    "PAGES",
    "RESOURCES",
    "SEARCH_TERM",
    "Page",
    "Payment",
    "page",
    "paths",
]

Kind = Literal["static", "js", "login", "robots"]

#: Where the off-host links point by default (never followed by our crawlers).
OFFSITE_LINK = "https://www.python.org/"
#: The search form's preset value, so submitting it reaches one known page.
SEARCH_TERM = "wire"


@dataclass(frozen=True)
class Page:
    """One HTML page of the site.

    Attributes:
        path: the canonical address (path, then ``?`` and the sorted query if any).
        kind: ``static``, ``js``, ``login`` or ``robots`` (see the module docstring).
        via: how a visitor first gets there, in words.
        title: the page's ``<title>``.
    """

    path: str
    kind: Kind
    via: str
    title: str


@dataclass(frozen=True)
class Payment:
    """One row of the account page: what the login-aware scraper must extract."""

    direction: Literal["to", "from"]
    dollars: int
    account: str
    memo: str


#: The account page's payments, in page order.
ACCOUNT_PAYMENTS: tuple[Payment, ...] = (
    Payment("to", 125, "psf", "Conference registration"),
    Payment("to", 200, "liz", "For the crawler code"),
    Payment("from", 25, "sam", "Train fare, with thanks"),
    Payment("to", 40, "lab", 'Cables & "patch" leads'),
)

PAGES: tuple[Page, ...] = (
    Page("/", "static", "the start page", "Tinysite"),
    Page("/about.html", "static", "a link on /", "About tinysite"),
    Page("/catalog/", "static", "a link on /", "Catalog, page 1"),
    Page("/catalog/?page=2&sort=name", "static", "a link on / and /catalog/", "Catalog, page 2"),
    Page("/catalog/widget.html", "static", "a link on /catalog/", "The widget"),
    Page("/catalog/gadget.html", "static", "a link on catalog page 2", "The gadget"),
    Page("/news.html", "static", "a link on /", "News"),
    Page("/search.html", "static", "a link on /about.html", "Search"),
    Page("/login", "static", "a link on /, and where /account/ redirects", "Sign in"),
    Page("/js/gallery.html", "js", "a link a script inserts on /", "Gallery"),
    Page("/js/archive.html", "js", "a link a script inserts on /", "Archive"),
    Page("/js/archive-2019.html", "js", "a link on /js/archive.html", "Archive: 2019"),
    Page(
        f"/search/results.html?q={SEARCH_TERM}",
        "js",
        "submitting the form on /search.html",
        "Search results",
    ),
    Page("/search/advanced.html", "js", "a link on the search results", "Advanced search"),
    Page("/account/", "login", "a link on /, after the login", "Your account"),
    Page("/account/statements.html", "login", "a link on /account/", "Statements"),
    Page("/private/staff.html", "robots", "a link on /, disallowed by robots.txt", "Staff only"),
)

#: Resources that are not HTML pages: ``(path, content type)``.
RESOURCES: tuple[tuple[str, str], ...] = (
    ("/robots.txt", "text/plain; charset=utf-8"),
    ("/static/site.js", "text/javascript; charset=utf-8"),
    ("/data/links.json", "application/json"),
    ("/files/prices.csv", "text/csv; charset=utf-8"),
)

ROBOTS_TXT = """\
# tinysite: crawlers welcome, except in /private/.
User-agent: *
Disallow: /private/
"""

LINKS_JSON = """[
  {"href": "/js/gallery.html", "title": "The gallery"},
  {"href": "js/archive.html#latest", "title": "The archive"}
]
"""

PRICES_CSV = "item,dollars\nwidget,12\ngadget,30\n"

SITE_JS = """\
// tinysite: links that only a browser running this script will see.
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("more");
  if (!list) { return; }
  fetch("/data/links.json")
    .then((response) => response.json())
    .then((items) => {
      for (const item of items) {
        const entry = document.createElement("li");
        const link = document.createElement("a");
        link.href = item.href;
        link.textContent = item.title;
        entry.appendChild(link);
        list.appendChild(entry);
      }
      list.dataset.loaded = "yes";
    });
});
"""

_BY_PATH = {p.path: p for p in PAGES}


def page(path: str) -> Page:
    """The manifest entry of a canonical ``path`` (KeyError if the site has no such page)."""
    return _BY_PATH[path]


def paths(*kinds: Kind) -> frozenset[str]:
    """The canonical addresses of the pages of these kinds."""
    return frozenset(p.path for p in PAGES if p.kind in kinds)


def _payments_html() -> str:
    rows = []
    for p in ACCOUNT_PAYMENTS:
        word = "paid to" if p.direction == "to" else "received from"
        rows.append(
            f'  <li class="{p.direction}">${p.dollars} {word} <b>{html.escape(p.account)}</b>'
            f" for: <i>{html.escape(p.memo)}</i></li>"
        )
    return '<ul class="payments">\n' + "\n".join(rows) + "\n</ul>"


#: The body of each page (HTML between ``<body>`` and ``</body>``); ``{offsite}`` is filled in.
BODIES: dict[str, str] = {
    "/": """\
<h1>Tinysite</h1>
<p>A small site for crawlers to learn on. Start anywhere:</p>
<ul>
  <li><a href="/about.html">About this site</a> (and <a href="about.html#team">the team</a>)</li>
  <li><a href="/catalog/">The catalog</a>, or straight to
      <a href="/catalog/?sort=name&amp;page=2#top">its second page</a></li>
  <li><a href="news.html">News</a></li>
  <li><a href="/account/">Your account</a> (<a href="/login">sign in</a> first)</li>
  <li><a href="/private/staff.html">Staff only</a></li>
  <li><a href="/files/prices.csv">Prices (CSV)</a></li>
  <li><a href="{offsite}">Python</a>, elsewhere on the web</li>
  <li><a>An anchor without an address</a>, <a href="mailto:webmaster@example.com">mail</a>,
      <a href="javascript:void(0)">a script link</a>, <a href="#">the top</a></li>
</ul>
<p>More, for visitors whose browser runs scripts:</p>
<ul id="more"></ul>
<script src="/static/site.js"></script>
""",
    "/about.html": """\
<h1 id="team">About tinysite</h1>
<p>Every page here is listed in a manifest, so a crawl can be checked.
Try the <a href="/search.html">search page</a>, or go <a href="/">home</a>.</p>
""",
    "/catalog/": """\
<h1>Catalog, page 1</h1>
<ul><li><a href="widget.html">The widget</a></li></ul>
<p><a href="?page=2&amp;sort=name">Next page</a> | <a href="/">Home</a></p>
""",
    "/catalog/?page=2&sort=name": """\
<h1 id="top">Catalog, page 2</h1>
<ul><li><a href="/catalog/gadget.html">The gadget</a></li></ul>
<p><a href="/catalog/">Previous page</a> | <a href="/catalog/?page=2&amp;sort=name#top">This
page</a></p>
""",
    "/catalog/widget.html": """\
<h1>The widget</h1>
<p>Twelve dollars. <a href="/catalog/">Back to the catalog</a></p>
""",
    "/catalog/gadget.html": """\
<h1>The gadget</h1>
<p>Thirty dollars. <a href="/catalog/?sort=name&amp;page=2">Back to page 2</a></p>
""",
    "/news.html": """\
<h1>News</h1>
<p>Nothing new: <a href="/news.html?">this page</a> again, or
<a href="{offsite}#news">news elsewhere</a>.</p>
""",
    "/search.html": f"""\
<h1>Search</h1>
<form method="get" action="/search/results.html">
  <label>Words <input type="text" name="q" value="{SEARCH_TERM}"></label>
  <button type="submit">Search</button>
</form>
""",
    "/js/gallery.html": """\
<h1>Gallery</h1>
<p>Found by a script. <a href="/">Home</a></p>
""",
    "/js/archive.html": """\
<h1>Archive</h1>
<p>Found by a script; it links <a href="archive-2019.html">2019</a> plainly.</p>
""",
    "/js/archive-2019.html": """\
<h1>Archive: 2019</h1>
<p>Linked only from a page that a script found. <a href="/js/archive.html">Up</a></p>
""",
    f"/search/results.html?q={SEARCH_TERM}": """\
<h1>Search results</h1>
<p>One result for <b>{query}</b>: <a href="/search/advanced.html">try the advanced
search</a>.</p>
""",
    "/search/advanced.html": """\
<h1>Advanced search</h1>
<p>Reached only through the search form's results. <a href="/search.html">Back</a></p>
""",
    "/account/": f"""\
<h1>Your account, {{user}}</h1>
<p>Your payments:</p>
{_payments_html()}
<p><a href="/account/statements.html">Statements</a> |
<form method="post" action="/logout" class="inline"><button>Sign out</button></form></p>
""",
    "/account/statements.html": """\
<h1>Statements</h1>
<p>Statements for {user}: none yet. <a href="/account/">Back to your account</a></p>
""",
    "/private/staff.html": """\
<h1>Staff only</h1>
<p>robots.txt asks crawlers to stay out of /private/.</p>
""",
}

LOGIN_BODY = """\
<h1>Sign in</h1>
{message}<form method="post" action="/login">
  <label>User name <input type="text" name="username" autocomplete="username"></label>
  <label>Password <input type="password" name="password" autocomplete="current-password">
  </label>
  <button type="submit">Sign in</button>
</form>
<p><a href="/">Home</a></p>
"""

NOT_FOUND_BODY = """\
<h1>Not found</h1>
<p>There is no such page here. <a href="/">Home</a></p>
"""


def document(title: str, body: str) -> str:
    """A whole HTML document around ``body``."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        "</head>\n<body>\n"
        f"{body}"
        "</body>\n</html>\n"
    )
