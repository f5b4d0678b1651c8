"""The WSGI applications of chapter 10, and a middleware that shows their HTTP.

* :func:`env_app` (F54): the book's ``wsgi_env.py``: ``200 text/plain`` with the WSGI
  environment pretty-printed. The book's version also printed the server's whole process
  environment (wsgiref copies ``os.environ`` into every request: secrets included); ours
  hides those keys and says how many it hid.
* The time service (F55-F57), three ways with one behaviour: :func:`make_time_raw` on bare
  WSGI, :func:`make_time_werkzeug` on Werkzeug's request and response objects,
  :func:`make_time_webob` on WebOb's. As in the book: a method other than GET is
  ``501 Not Implemented``; a Host (port removed) other than ``127.0.0.1``, or a path other
  than ``/``, is ``404 Not Found``; otherwise ``200`` with ``time.ctime()``. Our additions,
  invisible to the book's test: HEAD is answered like GET without a body, the 501 carries
  ``Allow: GET, HEAD``, and a Host with an IPv6 literal (``[::1]:8000``) is parsed.
* :class:`WireLogger` (F47): prints each request and response as HTTP, as the application
  sees them (the request head rebuilt from the environ, the body as it is read; the
  response head and body as they are sent). :mod:`wirelab.http.gunicorn_conf` shows the
  real bytes of a socket under gunicorn.

:func:`build` makes any of them by name; gunicorn loads them the same way
(``wirelab.http.apps:build('time-raw')``).
"""

from __future__ import annotations

import os
import pprint
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO
from urllib.parse import quote

from wirelab.errors import ConfigError

__all__ = [
    "APPS",
    "DEFAULT_HOSTS",
    "WireLogger",
    "build",
    "env_app",
    "host_name",
    "make_time_raw",
    "make_time_webob",
    "make_time_werkzeug",
]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: The only Host the book's time service answers.
DEFAULT_HOSTS = ("127.0.0.1",)
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_ALLOW = ("Allow", "GET, HEAD")
#: Environ keys that are the request's own (never hidden by :func:`env_app`).
_REQUEST_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
        "GATEWAY_INTERFACE",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "RAW_URI",
        "REQUEST_URI",
    }
)


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header value without its port (``[::1]:80`` gives ``::1``)."""
    value = host_header.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


# -- F54: the environment dump ---------------------------------------------------------------


def env_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``200 text/plain``: the WSGI environment (without the server's process environment)."""
    shown: dict[str, Any] = {}
    hidden = 0
    for key, value in environ.items():
        own = key in _REQUEST_KEYS or key.startswith(("HTTP_", "wsgi.", "gunicorn.", "waitress."))
        if not own and key in os.environ and os.environ[key] == value:
            hidden += 1
            continue
        shown[key] = value
    start_response("200 OK", [_TEXT])
    text = "Here is the WSGI environment:\r\n\r\n" + pprint.pformat(shown)
    if hidden:
        text += f"\r\n\r\n({hidden} variables of the server's process environment hidden)"
    return [text.encode("utf-8")]


# -- F55-F57: the time service three ways ----------------------------------------------------


def make_time_raw(hosts: Sequence[str] = DEFAULT_HOSTS) -> WSGIApp:
    """The time service on bare WSGI: the environ in, ``start_response`` and bytes out."""
    allowed = frozenset(hosts)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        host = host_name(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
        path = environ.get("PATH_INFO", "/")
        if method not in ("GET", "HEAD"):
            start_response("501 Not Implemented", [_TEXT, _ALLOW])
            return [b"501 Not Implemented"]
        if host not in allowed or path != "/":
            status, body = "404 Not Found", b"404 Not Found"
        else:
            status, body = "200 OK", time.ctime().encode("ascii")
        start_response(status, [_TEXT, ("Content-Length", str(len(body)))])
        return [] if method == "HEAD" else [body]

    return app


def make_time_werkzeug(hosts: Sequence[str] = DEFAULT_HOSTS) -> WSGIApp:
    """The time service with Werkzeug's ``Request`` and ``Response``."""
    from werkzeug.wrappers import Request, Response

    allowed = frozenset(hosts)

    @Request.application
    def app(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = Response("501 Not Implemented", status=501, content_type=_TEXT[1])
            response.headers["Allow"] = _ALLOW[1]
            return response
        if host_name(request.host) not in allowed or request.path != "/":
            return Response("404 Not Found", status=404, content_type=_TEXT[1])
        return Response(time.ctime(), content_type=_TEXT[1])

    return app


def make_time_webob(hosts: Sequence[str] = DEFAULT_HOSTS) -> WSGIApp:
    """The time service with WebOb's ``Request`` and ``Response``."""
    import webob

    allowed = frozenset(hosts)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = webob.Request(environ)
        if request.method not in ("GET", "HEAD"):
            response = webob.Response("501 Not Implemented", status=501)
            response.headers["Allow"] = _ALLOW[1]
        elif host_name(request.host) not in allowed or request.path != "/":
            response = webob.Response("404 Not Found", status=404)
        else:
            response = webob.Response(time.ctime())
        response.content_type = "text/plain"
        response.charset = "utf-8"
        result: Iterable[bytes] = response(environ, start_response)
        return result

    return app


# -- F47: the wire logger --------------------------------------------------------------------


def _header_name(key: str) -> str:
    return "-".join(part.capitalize() for part in key.split("_"))


class _LoggedInput:
    """``wsgi.input`` that shows the body bytes as the application reads them."""

    def __init__(self, stream: Any, show: Callable[[str, bytes], None]) -> None:
        self._stream = stream
        self._show = show

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self._show("<", data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self._stream.readline(size)
        self._show("<", data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(hint)
        for line in lines:
            self._show("<", line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class WireLogger:
    """WSGI middleware printing each request and response as HTTP text (``<`` in, ``>`` out).

    Args:
        app: the application to wrap.
        out: where to print (default: standard output).
    """

    def __init__(self, app: WSGIApp, out: TextIO | None = None) -> None:
        self.app = app
        self.out = out
        self._count = 0

    def _write(self, number: int, arrow: str, data: bytes) -> None:
        if not data:
            return
        out = self.out or sys.stdout
        text = data.decode("utf-8", "backslashreplace")
        out.write("\n".join(f"[{number}] {arrow} {line}" for line in text.split("\n")) + "\n")
        out.flush()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self._count += 1
        number = self._count
        target = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        lines = [f"{environ['REQUEST_METHOD']} {target} {environ.get('SERVER_PROTOCOL', '')}"]
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                lines.append(f"{_header_name(key[5:])}: {value}")
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                lines.append(f"{_header_name(key)}: {value}")
        self._write(number, "<", ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _LoggedInput(
                environ["wsgi.input"], lambda arrow, data: self._write(number, arrow, data)
            )

        def logged_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            head = [f"{environ.get('SERVER_PROTOCOL', 'HTTP/1.1')} {status}"]
            head += [f"{name}: {value}" for name, value in headers]
            self._write(number, ">", ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace"))
            return start_response(status, headers, *exc)

        result = self.app(environ, logged_start)
        try:
            for chunk in result:
                self._write(number, ">", chunk)
                yield chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


# -- by name ---------------------------------------------------------------------------------

#: The applications ``wirelab http serve APP`` knows, with one line each.
APPS: dict[str, str] = {
    "env": "the WSGI environment dump (wsgi_env.py)",
    "time-raw": "the time service on bare WSGI (timeapp_raw.py)",
    "time-werkzeug": "the time service on Werkzeug (timeapp_werkz.py)",
    "time-webob": "the time service on WebOb (timeapp_webob.py)",
    "httpbin": "httpbin, the book's chapter 9 server",
}


def build(name: str, *hosts: str, wirelog: bool = False) -> WSGIApp:
    """The application ``name`` (see :data:`APPS`); the time apps answer ``hosts``.

    Raises:
        ConfigError: an unknown name.
    """
    allowed = hosts or DEFAULT_HOSTS
    app: WSGIApp
    if name == "env":
        app = env_app
    elif name == "time-raw":
        app = make_time_raw(allowed)
    elif name == "time-werkzeug":
        app = make_time_werkzeug(allowed)
    elif name == "time-webob":
        app = make_time_webob(allowed)
    elif name == "httpbin":
        app = _httpbin()
    else:
        raise ConfigError(f"unknown application {name!r} (choose from {', '.join(APPS)})")
    return WireLogger(app) if wirelog else app


def _httpbin() -> WSGIApp:
    import logging

    logging.getLogger("httpbin.core").setLevel(logging.ERROR)  # "flasgger is not installed"
    import httpbin

    app: WSGIApp = httpbin.app
    return app
