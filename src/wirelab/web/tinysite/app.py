"""The test site as a small WSGI app (no framework): pages, a form login, robots.txt.

:func:`build` is the app gunicorn loads in the lab (``wirelab.web.tinysite.app:build()``);
tests serve it with waitress on a loopback socket. The pages and the manifest are in
:mod:`wirelab.web.tinysite.pages`.

The login is a form (``POST /login`` with ``username`` and ``password``, the lab's accounts)
that sets a random session cookie (``HttpOnly``, ``SameSite=Lax``; ``Secure`` behind HTTPS)
and redirects to ``/account/``; the session lives in this process, at most
:data:`MAX_SESSIONS` of them for :data:`SESSION_SECONDS` each. Every limit is explicit: a
login body over :data:`MAX_FORM_BYTES` is refused with 413, a query over
:data:`MAX_QUERY_CHARS` with 414, and anything but ``GET``/``HEAD`` (and ``POST`` on the
login and logout) with 405.
"""

from __future__ import annotations

import collections
import hmac
import html
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from wirelab.config import LAB_ACCOUNTS
from wirelab.web.tinysite import pages

__all__ = ["COOKIE", "TinySite", "build"]

#: The session cookie's name.
COOKIE = "tinysite_session"
#: Sessions kept at once (the oldest is dropped for a new one).
MAX_SESSIONS = 1024
#: How long a session lasts (seconds).
SESSION_SECONDS = 3600.0
#: The largest login form body read.
MAX_FORM_BYTES = 4096
#: The longest query string answered.
MAX_QUERY_CHARS = 2048
#: The environment variable that moves the off-host links (tests point them at a trap).
OFFSITE_ENV = "WIRELAB_TINYSITE_OFFSITE"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class TinySite:
    """The WSGI app. ``offsite`` is where the off-host links point."""

    def __init__(
        self,
        offsite: str = pages.OFFSITE_LINK,
        accounts: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.offsite = offsite
        self.accounts = dict(accounts or ((a.user, a.password) for a in LAB_ACCOUNTS))
        self._sessions: collections.OrderedDict[str, tuple[str, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    # -- sessions ------------------------------------------------------------------------

    def _new_session(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = (user, time.monotonic() + SESSION_SECONDS)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token

    def _user(self, environ: Environ) -> str | None:
        token = _cookies(environ).get(COOKIE)
        if not token:
            return None
        with self._lock:
            entry = self._sessions.get(token)
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._sessions[token]
                return None
            return entry[0]

    def _end_session(self, environ: Environ) -> None:
        token = _cookies(environ).get(COOKIE)
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def _check(self, user: str, password: str) -> bool:
        expected = self.accounts.get(user)
        # Compare even for an unknown user, so the time does not tell which names exist.
        ok = hmac.compare_digest(password.encode(), (expected or "\0").encode())
        return ok and expected is not None

    # -- the app -------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "/")) or "/"
        query = str(environ.get("QUERY_STRING", ""))
        secure = _scheme(environ) == "https"
        if len(query) > MAX_QUERY_CHARS:
            return _reply(start_response, method, "414 URI Too Long", _html("Too long", ""))
        if path in ("/login", "/logout"):
            if method not in ("GET", "HEAD", "POST"):
                return _not_allowed(start_response, method, "GET, HEAD, POST")
            if path == "/logout":
                return self._logout(environ, start_response, method, secure)
            return self._login(environ, start_response, method, secure)
        if method not in ("GET", "HEAD"):
            return _not_allowed(start_response, method, "GET, HEAD")
        for resource, content_type in pages.RESOURCES:
            if path == resource:
                return _reply(
                    start_response, method, "200 OK", _resource(resource).encode(), content_type
                )
        key = _page_key(path, query)
        entry = _lookup(key)
        if entry is None:
            body = pages.document("Not found", pages.NOT_FOUND_BODY)
            return _reply(start_response, method, "404 Not Found", body.encode())
        fill = {"{offsite}": html.escape(self.offsite)}
        if entry.kind == "login":
            user = self._user(environ)
            if user is None:
                return _redirect(start_response, method, "/login")
            fill["{user}"] = html.escape(user)
        if entry.path.startswith("/search/results.html"):
            fill["{query}"] = html.escape(_query(query).get("q", ""))
        body = pages.BODIES[entry.path]
        for marker, value in fill.items():
            body = body.replace(marker, value)
        extra = [("Cache-Control", "no-store")] if entry.kind == "login" else []
        return _reply(
            start_response,
            method,
            "200 OK",
            pages.document(entry.title, body).encode(),
            extra=extra,
        )

    def _login(
        self, environ: Environ, start_response: StartResponse, method: str, secure: bool
    ) -> Iterable[bytes]:
        if method != "POST":
            body = pages.LOGIN_BODY.replace("{message}", "")
            return _reply(start_response, method, "200 OK", _html("Sign in", body))
        form = _read_form(environ)
        if form is None:
            return _reply(start_response, method, "413 Content Too Large", _html("Too large", ""))
        user, password = form.get("username", ""), form.get("password", "")
        if not self._check(user, password):
            message = '<p class="error">Wrong user name or password.</p>\n'
            body = pages.LOGIN_BODY.replace("{message}", message)
            return _reply(start_response, method, "403 Forbidden", _html("Sign in", body))
        token = self._new_session(user)
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if secure else ""
        )
        return _redirect(start_response, method, "/account/", cookie=cookie)

    def _logout(
        self, environ: Environ, start_response: StartResponse, method: str, secure: bool
    ) -> Iterable[bytes]:
        if method != "POST":  # a GET must not change anything (no logout by a link)
            return _not_allowed(start_response, method, "POST")
        self._end_session(environ)
        cookie = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (
            "; Secure" if secure else ""
        )
        return _redirect(start_response, method, "/", cookie=cookie)


def build(offsite: str | None = None) -> TinySite:
    """The app (the lab's gunicorn calls this): off-host links to ``offsite``, else
    ``$WIRELAB_TINYSITE_OFFSITE``, else :data:`~wirelab.web.tinysite.pages.OFFSITE_LINK`."""
    return TinySite(offsite or os.environ.get(OFFSITE_ENV) or pages.OFFSITE_LINK)


# -- helpers -----------------------------------------------------------------------------------


def _resource(path: str) -> str:
    return {
        "/robots.txt": pages.ROBOTS_TXT,
        "/static/site.js": pages.SITE_JS,
        "/data/links.json": pages.LINKS_JSON,
        "/files/prices.csv": pages.PRICES_CSV,
    }[path]


def _query(query: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True, max_num_fields=20))


def _page_key(path: str, query: str) -> str:
    """The manifest key this request asks for (the query matters on two pages only)."""
    if path == "/catalog/":
        fields = _safe_query(query)
        return "/catalog/?page=2&sort=name" if fields.get("page") == "2" else "/catalog/"
    if path == "/search/results.html":
        return f"/search/results.html?q={pages.SEARCH_TERM}"  # any words: one results page
    return path


def _safe_query(query: str) -> dict[str, str]:
    try:
        return _query(query)
    except ValueError:  # over max_num_fields
        return {}


def _lookup(key: str) -> pages.Page | None:
    try:
        return pages.page(key)
    except KeyError:
        return None


def _scheme(environ: Environ) -> str:
    forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).lower()
    return forwarded if forwarded in ("http", "https") else str(environ.get("wsgi.url_scheme"))


def _cookies(environ: Environ) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in str(environ.get("HTTP_COOKIE", ""))[:8192].split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found.setdefault(name, value)
    return found


def _read_form(environ: Environ) -> dict[str, str] | None:
    """The urlencoded body (``None`` if over :data:`MAX_FORM_BYTES`)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_FORM_BYTES:
        return None
    data = environ["wsgi.input"].read(max(0, length)) if length > 0 else b""
    try:
        return _query(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}


def _html(title: str, body: str) -> bytes:
    return pages.document(title, body).encode()


def _reply(
    start_response: StartResponse,
    method: str,
    status: str,
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'self'"),
        *(extra or []),
    ]
    start_response(status, headers)
    return [b""] if method == "HEAD" else [body]


def _redirect(
    start_response: StartResponse, method: str, location: str, cookie: str | None = None
) -> Iterable[bytes]:
    extra = [("Location", location)]
    if cookie is not None:
        extra.append(("Set-Cookie", cookie))
    body = _html(
        "Moved", f'<p>See <a href="{html.escape(location)}">{html.escape(location)}</a></p>'
    )
    return _reply(start_response, method, "303 See Other", body, extra=extra)


def _not_allowed(start_response: StartResponse, method: str, allow: str) -> Iterable[bytes]:
    body = _html("Not allowed", "<p>That method is not allowed here.</p>")
    return _reply(start_response, method, "405 Method Not Allowed", body, extra=[("Allow", allow)])
