"""Geocoding four ways, from a library call down to bytes over TLS (chapter 1, F01-F04).

1. ``library``: geopy's geocoder object (Nominatim or GoogleV3), pointed at the provider;
2. ``requests``: an HTTP GET with query parameters, a custom User-Agent, a timeout and a
   status check, over a session whose adapter hands urllib3 the provider's ``SSLContext``
   and TLS name (:mod:`wirelab.geo._tlsadapter`);
3. ``httpclient``: the stdlib's ``http.client.HTTPSConnection`` with an explicit context and
   a hand-built, percent-encoded path;
4. ``raw``: a TCP socket wrapped with ``SSLContext.wrap_socket(server_hostname=...)``
   (certificate and host name verified, SNI sent), a hand-written HTTP/1.1 request, and the
   response parsed by :mod:`wirelab.geo._http` (chunked or Content-Length bodies).

All four return the same :class:`Location` list, so their answers can be compared; no match
is an empty list, never an exception. Failures map onto :mod:`wirelab.errors`. The query is
checked here first, by the gazetteer's own rules (:func:`wirelab.geo._query.parse_query`: not
empty, at most 256 characters, one line of valid Unicode text), so every way refuses the same
bad text with the same one-line :class:`~wirelab.errors.LocalProtocolError`, before anything
is sent or any rate limit is spent.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from wirelab.errors import (
    ConfigError,
    ConnectError,
    LocalProtocolError,
    RemoteProtocolError,
    Timeout,
    TLSError,
    TransportError,
    WirelabError,
)
from wirelab.geo._http import NEED_DATA, Response, ResponseParser
from wirelab.geo._query import QueryError, parse_query
from wirelab.geo.providers import Provider
from wirelab.net.addresses import connect_tcp
from wirelab.net.tlsctx import wrap_tls_error

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "WAYS",
    "Location",
    "check_query",
    "geocode",
    "raw_get",
]

#: The four ways, from the highest level to the lowest.
WAYS = ("library", "requests", "httpclient", "raw")

#: Seconds for connecting and for each read.
DEFAULT_TIMEOUT = 10.0

#: Largest response body read by the http.client and raw ways.
MAX_RESPONSE = 1 << 20


@dataclass(frozen=True)
class Location:
    """One answer: coordinates and the provider's name for the place."""

    latitude: float
    longitude: float
    address: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def geocode(
    address: str,
    *,
    provider: Provider,
    way: str = "library",
    timeout: float = DEFAULT_TIMEOUT,
    limit: int = 1,
) -> list[Location]:
    """Geocode ``address`` through ``provider`` by one of the four ``way``\\ s.

    The text sent is the checked query: Unicode NFC, white space collapsed.

    Raises:
        ConfigError: an unknown way.
        LocalProtocolError: the query is empty, too long, or not one line of valid text.
        Timeout, ConnectError, TLSError: the network or TLS failed.
        RemoteProtocolError: the service answered with an error or with bad JSON.
    """
    if way not in WAYS:
        raise ConfigError(f"unknown way {way!r} (one of {', '.join(WAYS)})")
    address = check_query(address)
    provider.pace()
    if way == "library":
        return _library(address, provider, timeout, limit)
    if way == "requests":
        document = _requests(address, provider, timeout, limit)
    elif way == "httpclient":
        document = _httpclient(address, provider, timeout, limit)
    else:
        response = raw_get(provider, provider.target(address, limit), timeout=timeout)
        document = _decode(response.status, response.body, provider)
    return _locations(document, provider)[:limit]


def check_query(address: str) -> str:
    """``address`` as it will be sent, once it passes the query rules.

    Raises:
        LocalProtocolError: empty, over the length limit, with control characters, or with
            lone surrogates (bytes that were not UTF-8, as Python hands them over from argv).
    """
    try:
        return parse_query(address).text
    except QueryError as exc:
        raise LocalProtocolError(f"bad query: {exc}") from exc


# -- answers ----------------------------------------------------------------------------------


def _decode(status: int, body: bytes, provider: Provider) -> Any:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemoteProtocolError(f"{provider.name}: the answer is not JSON ({exc})") from exc
    if status != 200:
        message = document.get("error", {}) if isinstance(document, dict) else {}
        text = message.get("message") if isinstance(message, dict) else None
        text = text or (document.get("error_message") if isinstance(document, dict) else None)
        raise RemoteProtocolError(
            f"{provider.name} answered HTTP {status}: {text or 'error'}", code=status
        )
    return document


def _locations(document: Any, provider: Provider) -> list[Location]:
    try:
        if provider.style == "google":
            status = document.get("status")
            if status == "ZERO_RESULTS":
                return []
            if status != "OK":
                detail = document.get("error_message", "")
                raise RemoteProtocolError(f"{provider.name} answered status {status}: {detail}")
            return [
                Location(
                    float(r["geometry"]["location"]["lat"]),
                    float(r["geometry"]["location"]["lng"]),
                    str(r.get("formatted_address", "")),
                    r,
                )
                for r in document["results"]
            ]
        if not isinstance(document, list):
            raise RemoteProtocolError(f"{provider.name}: expected a JSON list of places")
        return [
            Location(float(p["lat"]), float(p["lon"]), str(p.get("display_name", "")), p)
            for p in document
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RemoteProtocolError(f"{provider.name}: unexpected answer shape ({exc!r})") from exc


# -- 1. the library ---------------------------------------------------------------------------


def _library(address: str, provider: Provider, timeout: float, limit: int) -> list[Location]:
    from geopy import exc as geopy_exc
    from geopy.geocoders import GoogleV3, Nominatim

    common: dict[str, Any] = {
        "domain": provider.netloc,
        "scheme": "https",
        "timeout": timeout,
        "ssl_context": provider.ssl_context,
        "user_agent": provider.user_agent,
    }
    try:
        if provider.style == "google":
            geocoder: Any = GoogleV3(api_key=provider.api_key, **common)
            found = geocoder.geocode(address, exactly_one=False)
        else:
            geocoder = Nominatim(**common)
            found = geocoder.geocode(address, exactly_one=False, limit=limit)
    except geopy_exc.GeopyError as exc:
        raise _library_error(exc, provider, timeout) from exc
    return [Location(loc.latitude, loc.longitude, loc.address, loc.raw) for loc in found or []]


def _library_error(exc: Exception, provider: Provider, timeout: float) -> WirelabError:
    """Our error for a geopy one; an HTTP error answer keeps the service's own message."""
    from geopy import exc as geopy_exc

    answer = _http_error(exc)  # geopy maps statuses onto classes (503 is "timed out" ...)
    if answer is not None:
        try:
            _decode(*answer, provider)
        except RemoteProtocolError as error:
            if error.code is not None:  # a JSON error document, as the other ways report it
                return error
        return RemoteProtocolError(f"{provider.name}: {exc}", code=answer[0])
    if isinstance(exc, geopy_exc.GeocoderTimedOut):
        return Timeout(f"{provider.name} did not answer within {timeout:g} s")
    if isinstance(exc, geopy_exc.GeocoderUnavailable):
        found = _ssl_error(exc)
        if found is not None:
            return wrap_tls_error(found, provider.netloc)
        if "CERTIFICATE" in str(exc).upper():
            return TLSError(f"TLS with {provider.netloc} failed: {exc}")
        return ConnectError(f"network failure: {provider.netloc}: {exc}")
    return RemoteProtocolError(f"{provider.name}: {exc}")


def _causes(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and what lies under it: causes, contexts, and wrapped exceptions in the args
    or a ``reason`` (urllib3 and requests wrap rather than chain), each once."""
    seen: list[BaseException] = []
    todo = [exc] if exc is not None else []
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        inner += list(current.args)
        todo += [e for e in inner if isinstance(e, BaseException)]
    return seen


def _ssl_error(exc: BaseException | None) -> ssl.SSLError | None:
    return next((e for e in _causes(exc) if isinstance(e, ssl.SSLError)), None)


def _http_error(exc: BaseException) -> tuple[int, bytes] | None:
    """The status and body of the HTTP error answer under a geopy exception, if any."""
    from geopy.adapters import AdapterHTTPError

    for cause in _causes(exc):
        if isinstance(cause, AdapterHTTPError) and cause.text:
            return int(cause.status_code), str(cause.text).encode("utf-8")
    return None


# -- 2. requests ------------------------------------------------------------------------------


def _requests(address: str, provider: Provider, timeout: float, limit: int) -> Any:
    import requests

    from wirelab.geo._tlsadapter import ContextAdapter

    params: dict[str, str | int] = {"format": "json", "limit": limit, "q": address}
    path = "/search"
    if provider.style == "google":
        path = "/maps/api/geocode/json"
        params = {"address": address}
        if provider.api_key:
            params["key"] = provider.api_key
    with requests.Session() as session:
        # Our context (lab CA or system store, VERIFY_X509_STRICT, TLS 1.2+) and our TLS name
        # (SNI and the certificate check), not requests' own CA bundle and the URL's host.
        session.mount("https://", ContextAdapter(provider.ssl_context, provider.tls_name))
        try:
            reply = session.get(
                provider.base_url + path,
                params=params,
                headers={"User-Agent": provider.user_agent, "Accept": "application/json"},
                timeout=timeout,
            )
        except requests.exceptions.SSLError as exc:
            found = _ssl_error(exc)
            if found is not None:
                raise wrap_tls_error(found, provider.tls_name) from exc
            raise TLSError(f"TLS with {provider.tls_name} failed: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise Timeout(f"{provider.name} did not answer within {timeout:g} s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ConnectError(f"network failure: cannot reach {provider.netloc}") from exc
        with reply:
            return _decode(reply.status_code, reply.content, provider)


# -- 3. http.client ---------------------------------------------------------------------------


def _httpclient(address: str, provider: Provider, timeout: float, limit: int) -> Any:
    connection = http.client.HTTPSConnection(
        provider.host, provider.port, timeout=timeout, context=provider.ssl_context
    )
    try:
        connection.request(
            "GET",
            provider.target(address, limit),
            headers={"User-Agent": provider.user_agent, "Accept": "application/json"},
        )
        reply = connection.getresponse()
        body = reply.read(MAX_RESPONSE + 1)
        if len(body) > MAX_RESPONSE:
            raise RemoteProtocolError(f"{provider.name}: the answer is over {MAX_RESPONSE} bytes")
        return _decode(reply.status, body, provider)
    except ssl.SSLError as exc:
        raise wrap_tls_error(exc, provider.netloc) from exc
    except TimeoutError as exc:
        raise Timeout(f"{provider.name} did not answer within {timeout:g} s") from exc
    except http.client.HTTPException as exc:
        raise RemoteProtocolError(f"{provider.name}: bad HTTP answer: {exc!r}") from exc
    except OSError as exc:
        raise ConnectError(f"network failure: {provider.netloc}: {exc}") from exc
    finally:
        connection.close()


# -- 4. raw HTTP/1.1 over a TLS socket --------------------------------------------------------


def raw_get(provider: Provider, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """Send one ``GET target`` by hand over TLS and parse the answer.

    Raises:
        ConnectError, Timeout, TLSError: the connection or the handshake failed.
        RemoteProtocolError: the answer is not valid HTTP/1.1 (or over a limit).
    """
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {provider.netloc}\r\n"
        f"User-Agent: {provider.user_agent}\r\n"
        "Accept: application/json\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")
    sock = connect_tcp(provider.host, provider.port, timeout=timeout)
    try:
        try:
            tls = provider.ssl_context.wrap_socket(sock, server_hostname=provider.tls_name)
        except ssl.SSLError as exc:
            raise wrap_tls_error(exc, provider.tls_name) from exc
        with tls:
            tls.sendall(request)
            parser = ResponseParser(method="GET", max_body=MAX_RESPONSE)
            while (event := parser.next_event()) is NEED_DATA:
                parser.receive_data(tls.recv(65536))
            assert isinstance(event, Response)
            return event
    except WirelabError:
        raise
    except TimeoutError as exc:
        raise Timeout(f"{provider.name} did not answer within {timeout:g} s") from exc
    except ssl.SSLError as exc:
        raise wrap_tls_error(exc, provider.tls_name) from exc
    except OSError as exc:
        raise TransportError(f"network failure talking to {provider.netloc}: {exc}") from exc
    finally:
        sock.close()
