"""The test site (F69) over real sockets: every page of the manifest, the login, the limits.

Driven with the standard library's ``http.client`` and ``urllib`` (independent of our
scrapers). :func:`local_site` serves the app with waitress on a loopback port, with a log of
every request, and an off-host "trap" server the off-host links point at; the scraper and
crawler tests import it.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from wirelab.http.server import listen, start_waitress
from wirelab.lab.state import LabState, ServiceView
from wirelab.web.tinysite import pages
from wirelab.web.tinysite.app import COOKIE, MAX_FORM_BYTES, build


@dataclass
class RequestLog:
    """Every request a served app saw: ``(method, path?query)``."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, app: Any) -> Any:
        def logged(environ: dict[str, Any], start_response: Any) -> Any:
            query = environ.get("QUERY_STRING", "")
            target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
            with self.lock:
                self.seen.append((environ["REQUEST_METHOD"], target))
            return app(environ, start_response)

        return logged

    def paths(self) -> list[str]:
        with self.lock:
            return [target.split("?", 1)[0] for _, target in self.seen]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def targets(self) -> list[str]:
        with self.lock:
            return [target for _, target in self.seen]


@dataclass
class LocalSite:
    """The test site on ``base`` (``http://127.0.0.1:PORT``), its request log, and the trap."""

    base: str
    log: RequestLog
    trap: RequestLog
    trap_url: str

    def url(self, path: str) -> str:
        return self.base + path


def _trap_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b"<html><title>trap</title><a href='/deeper'>deeper</a></html>"
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]


@contextlib.contextmanager
def local_site() -> Iterator[LocalSite]:
    """The test site served by waitress on 127.0.0.1, its off-host links at a trap on
    ``localhost`` (another host name, so another host for a crawler)."""
    trap_log = RequestLog()
    with start_waitress(trap_log.wrap(_trap_app), listen("127.0.0.1", 0)) as trap:
        trap_url = f"http://localhost:{trap.address[1]}/trap"
        log = RequestLog()
        with start_waitress(log.wrap(build(trap_url)), listen("127.0.0.1", 0)) as server:
            host, port = server.address
            yield LocalSite(f"http://{host}:{port}", log, trap_log, trap_url)


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    with local_site() as served:
        yield served


def _get(
    site: LocalSite, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(site.base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read(1 << 20)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def _login(site: LocalSite, user: str, password: str) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(site.base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        body = urllib.parse.urlencode({"username": user, "password": password})
        conn.request(
            "POST",
            "/login",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _session_cookie(site: LocalSite) -> str:
    status, headers, _ = _login(site, "brandon", "abc123")
    assert status == 303 and headers["location"] == "/account/"
    return headers["set-cookie"].split(";", 1)[0]


def test_the_manifest_is_consistent() -> None:
    kinds = {p.kind for p in pages.PAGES}
    assert kinds == {"static", "js", "login", "robots"}
    assert len({p.path for p in pages.PAGES}) == len(pages.PAGES)
    assert set(pages.BODIES) == {p.path for p in pages.PAGES} - {"/login"}
    assert len(pages.paths("static")) == 9 and len(pages.paths("js")) == 5


@pytest.mark.parametrize("entry", pages.PAGES, ids=lambda p: p.path)
def test_every_page_of_the_manifest_is_served_with_its_title(
    site: LocalSite, entry: pages.Page
) -> None:
    headers = {"Cookie": _session_cookie(site)} if entry.kind == "login" else {}
    status, head, body = _get(site, entry.path, headers=headers)
    assert status == 200, (entry.path, body[:200])
    assert head["content-type"] == "text/html; charset=utf-8"
    assert f"<title>{entry.title}</title>".encode() in body.replace(b"&#x27;", b"'")


def test_login_pages_redirect_to_the_login_without_a_session(site: LocalSite) -> None:
    for path in pages.paths("login"):
        status, head, _ = _get(site, path)
        assert (status, head["location"]) == (303, "/login")
    status, head, _ = _get(site, "/account/", headers={"Cookie": f"{COOKIE}=forged"})
    assert (status, head["location"]) == (303, "/login")


def test_a_login_sets_a_guarded_session_cookie_and_shows_the_payments(site: LocalSite) -> None:
    status, head, _ = _login(site, "brandon", "abc123")
    assert status == 303
    cookie = head["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    status, _, body = _get(site, "/account/", headers={"Cookie": cookie.split(";")[0]})
    assert status == 200 and b"Your account, brandon" in body
    assert body.count(b'<li class="to">') == 3 and body.count(b'<li class="from">') == 1


@pytest.mark.parametrize(
    ("user", "password"), [("brandon", "wrong"), ("nobody", "abc123"), ("", ""), ("brandon", "")]
)
def test_a_wrong_login_is_refused_with_the_form_again(
    site: LocalSite, user: str, password: str
) -> None:
    status, head, body = _login(site, user, password)
    assert status == 403 and "set-cookie" not in head
    assert b"Wrong user name or password" in body and b'type="password"' in body


def test_a_huge_login_body_is_refused(site: LocalSite) -> None:
    parts = urllib.parse.urlsplit(site.base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", "/login", body=b"u=" + b"x" * (MAX_FORM_BYTES + 1))
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_logout_is_a_post_and_ends_the_session(site: LocalSite) -> None:
    cookie = _session_cookie(site)
    assert _get(site, "/logout", headers={"Cookie": cookie})[0] == 405
    assert _get(site, "/account/", headers={"Cookie": cookie})[0] == 200
    status, head, _ = _get(site, "/logout", method="POST", headers={"Cookie": cookie})
    assert status == 303 and "Max-Age=0" in head["set-cookie"]
    assert _get(site, "/account/", headers={"Cookie": cookie})[0] == 303


def test_robots_txt_forbids_the_private_area(site: LocalSite) -> None:
    import urllib.robotparser

    status, head, body = _get(site, "/robots.txt")
    assert status == 200 and head["content-type"].startswith("text/plain")
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(body.decode().splitlines())
    assert not robots.can_fetch("anybot", site.url("/private/staff.html"))
    assert robots.can_fetch("anybot", site.url("/about.html"))


def test_the_script_links_are_only_in_the_json(site: LocalSite) -> None:
    _, _, home = _get(site, "/")
    for path in pages.paths("js"):
        assert path.encode() not in home
    status, head, data = _get(site, "/data/links.json")
    assert status == 200 and head["content-type"] == "application/json"
    assert b"/js/gallery.html" in data and b"js/archive.html" in data


def test_off_host_links_point_where_they_are_told(site: LocalSite) -> None:
    _, _, home = _get(site, "/")
    assert site.trap_url.encode() in home


def test_query_variants_are_one_page(site: LocalSite) -> None:
    one = _get(site, "/catalog/?page=2&sort=name")[2]
    assert _get(site, "/catalog/?sort=name&page=2")[2] == one
    assert b"Catalog, page 2" in one


def test_bad_requests_get_http_errors_and_the_site_keeps_serving(site: LocalSite) -> None:
    assert _get(site, "/nope.html")[0] == 404
    assert _get(site, "/about.html", method="DELETE")[0] == 405
    assert _get(site, "/about.html?" + "a=1&" * 1000)[0] == 414
    assert _get(site, "/catalog/?" + "&".join(f"k{i}=v" for i in range(100)))[0] == 200
    status, _, body = _get(site, "/about.html", method="HEAD")
    assert status == 200 and body == b""
    assert _get(site, "/")[0] == 200


def test_the_lab_serves_the_site_on_the_web_host(
    wirelab_lab: LabState, lab_tinysite: ServiceView
) -> None:
    ep = lab_tinysite.endpoint("http")
    assert ep.host == "www.example.com"
    conn = http.client.HTTPConnection(ep.address, ep.port, timeout=10)
    try:
        conn.request("GET", "/robots.txt", headers={"Host": f"www.example.com:{ep.port}"})
        response = conn.getresponse()
        assert response.status == 200 and b"Disallow: /private/" in response.read()
        assert response.getheader("Server") == "gunicorn"
    finally:
        conn.close()
