"""Addresses for crawlers: checking a start URL, one canonical form per page, same host or not.

The book's crawler counted ``/page#a`` and ``/page#b`` as two pages; here a link is reduced to
its canonical form before it is queued: the fragment dropped, the scheme and host lower-cased,
a default port dropped, dot segments resolved, an empty query dropped and the query's fields
sorted (``?sort=name&page=2`` and ``?page=2&sort=name`` are one page).
"""

from __future__ import annotations

import posixpath
import urllib.parse

from wirelab.errors import ConfigError

__all__ = ["MAX_URL_CHARS", "canonical", "check_url", "origin", "path_of", "same_host"]

#: The longest URL a crawler queues (longer links are skipped).
MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_url(url: str) -> str:
    """``url`` if it is an absolute ``http://`` or ``https://`` URL with a host, stripped.

    Raises:
        ConfigError: it is not (one line saying why).
    """
    text = url.strip()
    shown = text if len(text) <= 80 else text[:60] + "..."
    if not text:
        raise ConfigError("the URL is empty")
    if len(text) > MAX_URL_CHARS or any(ord(c) < 0x21 or c == "\x7f" for c in text):
        raise ConfigError(f"{shown!r} is not a URL (too long, or it has spaces or controls)")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ConfigError(f"{shown!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{shown!r} has a bad port") from None
    if not parts.hostname:
        raise ConfigError(f"{shown!r} names no host")
    del port
    return text


def canonical(url: str) -> str:
    """The one form of ``url`` a crawler keys its pages by (see the module docstring).

    Raises:
        ConfigError: ``url`` is not an absolute http(s) URL.
    """
    parts = urllib.parse.urlsplit(check_url(url))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path or "/"
    if "/." in path:
        trailing = path.endswith(("/", "/.", "/.."))
        path = posixpath.normpath(path)
        path = path.lstrip("/")
        path = "/" + path if path != "." else "/"
        if trailing and not path.endswith("/"):
            path += "/"
    fields = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = urllib.parse.urlencode(sorted(fields)) if fields else ""
    return urllib.parse.urlunsplit((scheme, netloc, path, query, ""))


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a canonical URL: what "the same host" means here."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_host(url: str, other: str) -> bool:
    """True when two canonical URLs share scheme, host and port."""
    return origin(url) == origin(other)


def path_of(url: str) -> str:
    """The path and query of ``url`` (``/catalog/?page=2``), as the site's manifest names pages."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
