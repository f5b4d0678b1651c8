"""The four ways of geocoding, against the lab geocoder, and their failures."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from wirelab.errors import (
    ConfigError,
    ConnectError,
    LocalProtocolError,
    RemoteProtocolError,
    Timeout,
    TLSError,
)
from wirelab.geo.client import WAYS, check_query, geocode, raw_get
from wirelab.geo.gazetteer import Gazetteer
from wirelab.geo.providers import Provider, RateLimiter, google_provider, make_provider
from wirelab.geo.server import GeoServer
from wirelab.geo.stringcodes import INCOMING, decode_incoming, encode_outgoing
from wirelab.lab.service import LabContext
from wirelab.net.tlsctx import client_context, server_context

ADDRESS = "207 N. Defiance St, Archbold, OH"


@pytest.mark.parametrize("style", ["nominatim", "google"])
@pytest.mark.parametrize("way", WAYS)
def test_every_way_finds_archbold(geo_server: Any, way: str, style: str) -> None:
    found = geocode(ADDRESS, provider=geo_server.provider(style), way=way)
    assert len(found) == 1
    assert abs(found[0].latitude - 41.5214) <= 0.05
    assert abs(found[0].longitude + 84.3072) <= 0.05
    assert "Archbold" in found[0].address


@pytest.mark.parametrize("way", WAYS)
def test_every_way_gives_an_empty_list_for_unknown_places(geo_server: Any, way: str) -> None:
    assert geocode("Atlantis, Nowhere", provider=geo_server.provider(), way=way) == []


class _Refusing(BaseHTTPRequestHandler):
    """Answers every GET with a JSON error: 503 when the query says "Busy", else 400."""

    def do_GET(self) -> None:
        status = 503 if "Busy" in self.path else 400
        body = json.dumps({"error": {"code": status, "message": "over quota, try later"}})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def https_server(context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A stdlib HTTPS server on a free loopback port (its port), stopped afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def moved(provider: Provider, port: int, **changes: Any) -> Provider:
    return dataclasses.replace(provider, host="127.0.0.1", port=port, **changes)


@pytest.mark.parametrize(("query", "status"), [("Paris", 400), ("Busy Paris", 503)])
@pytest.mark.parametrize("way", WAYS)
def test_server_errors_keep_the_services_message(
    geo_server: Any, way: str, query: str, status: int
) -> None:
    """Every way, the library included, says what the service said (not just a status)."""
    context = geo_server.lab.server_ssl_context(["nominatim.example.com"])
    with https_server(context, _Refusing) as port, pytest.raises(RemoteProtocolError) as info:
        geocode(query, provider=moved(geo_server.provider(), port), way=way)
    assert info.value.code == status
    assert str(info.value) == f"lab answered HTTP {status}: over quota, try later"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "the query is empty"),
        ("  \t ", "the query is empty"),
        ("x" * 10_000, "the query is too long (over 256 characters)"),
        ("x" * 257, "the query is too long (over 256 characters)"),
        ("caf\udce9", "the query is not valid text (bytes that are not UTF-8?)"),
        ("Paris\nTexas", "the query contains control characters"),
    ],
)
@pytest.mark.parametrize("way", WAYS)
def test_bad_queries_are_refused_before_sending(way: str, bad: str, why: str) -> None:
    """One clear LocalProtocolError, before any connection (nothing listens on the port) and
    before the rate limit is spent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        waits: list[float] = []
        limiter = RateLimiter(1000.0, sleep=waits.append)
        port = probe.getsockname()[1]
        tls_name = "nominatim.example.com"
        provider = Provider(
            "lab", "nominatim", "127.0.0.1", port, tls_name, client_context(), limiter=limiter
        )
        with pytest.raises(LocalProtocolError) as info:
            geocode(bad, provider=provider, way=way)
        with pytest.raises(LocalProtocolError):
            geocode(bad, provider=provider, way=way)
    assert str(info.value) == f"bad query: {why}"
    assert waits == []


def test_the_query_sent_is_the_checked_one() -> None:
    assert check_query("  Zu\u0308rich,   Switzerland ") == "Z\u00fcrich, Switzerland"


def untrusting(provider: Provider) -> Provider:
    return Provider(
        provider.name,
        provider.style,
        provider.host,
        provider.port,
        provider.tls_name,
        client_context(cadata=_other_ca_pem()),
        ca_file=None,
    )


def _other_ca_pem() -> str:
    import tempfile
    from pathlib import Path

    from wirelab.net.ca import LabCA

    with tempfile.TemporaryDirectory() as tmp:
        return LabCA.load_or_create(Path(tmp)).cert_pem.decode()


@pytest.mark.parametrize("way", WAYS)
def test_an_untrusted_certificate_is_a_tls_error(geo_server: Any, way: str) -> None:
    provider = untrusting(geo_server.provider())
    with pytest.raises((TLSError, ConnectError)) as info:
        geocode(ADDRESS, provider=provider, way=way)
    assert "certificate" in str(info.value).lower() or isinstance(info.value, TLSError)


@contextmanager
def geocoder_with(context: ssl.SSLContext, gazetteer: Gazetteer) -> Iterator[int]:
    """A real lab geocoder presenting ``context``'s certificate; yields its port."""
    server = GeoServer("127.0.0.1", 0, context, gazetteer).start()
    try:
        yield server.address[1]
    finally:
        server.stop()


def test_requests_way_checks_the_tls_name_with_our_context(
    geo_server: Any, gazetteer: Gazetteer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate naming only nominatim.example.com (no IP address) is right for a
    provider at 127.0.0.1 whose TLS name that is; verify=... checked the IP and refused it."""
    import requests.certs

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())  # ignored, not loaded
    cert, key = geo_server.lab.ca.server_cert_for(
        ["nominatim.example.com"], tmp_path, ip_addresses=()
    )
    provider = geo_server.provider()
    cas = provider.ssl_context.cert_store_stats()["x509_ca"]
    with geocoder_with(server_context(cert, key), gazetteer) as port:
        for way in ("requests", "raw"):
            (found,) = geocode(ADDRESS, provider=moved(provider, port), way=way)
            assert "Archbold" in found.address
    # our context alone decides the trust: no CA bundle (certifi's ...) was loaded into it
    assert provider.ssl_context.cert_store_stats()["x509_ca"] == cas == 1


def test_requests_way_refuses_a_certificate_for_another_name(geo_server: Any) -> None:
    """The certificate covers 127.0.0.1 (what the URL holds) but not the TLS name."""
    context = geo_server.lab.server_ssl_context(["other.example.com"])
    with https_server(context, _Refusing) as port, pytest.raises(TLSError) as info:
        geocode(ADDRESS, provider=moved(geo_server.provider(), port), way="requests")
    assert str(info.value) == (
        "TLS with nominatim.example.com failed: "
        "hostname mismatch: certificate is not valid for nominatim.example.com"
    )


def test_requests_way_refuses_a_certificate_from_another_ca(
    geo_server: Any, tmp_path: Path
) -> None:
    stranger = LabContext(state_dir=tmp_path, ephemeral=True)  # its own, unknown CA
    context = stranger.server_ssl_context(["nominatim.example.com"])
    with https_server(context, _Refusing) as port, pytest.raises(TLSError) as info:
        geocode(ADDRESS, provider=moved(geo_server.provider(), port), way="requests")
    assert str(info.value) == (
        "TLS with nominatim.example.com failed: unknown CA (not signed by a trusted authority)"
    )


def test_requests_way_keeps_our_minimum_version(geo_server: Any) -> None:
    """A TLS 1.3-only client context is obeyed: requests' own context would settle for 1.2."""
    context = geo_server.lab.server_ssl_context(["nominatim.example.com"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    strict = client_context(cafile=geo_server.ca, minimum_version=ssl.TLSVersion.TLSv1_3)
    with https_server(context, _Refusing) as port:
        provider = moved(geo_server.provider(), port, ssl_context=strict)
        with pytest.raises(TLSError, match="no TLS version in common"):
            geocode(ADDRESS, provider=provider, way="requests")
        with pytest.raises(RemoteProtocolError):  # the same server, with 1.2 allowed
            geocode(ADDRESS, provider=moved(geo_server.provider(), port), way="requests")


def test_the_adapter_cannot_be_told_not_to_verify(geo_server: Any, tmp_path: Path) -> None:
    import requests
    import requests.certs

    from wirelab.geo._tlsadapter import ContextAdapter

    lax = client_context()
    lax.check_hostname = False
    with pytest.raises(ConfigError, match="verifying context"):
        ContextAdapter(lax, "nominatim.example.com")
    stranger = LabContext(state_dir=tmp_path, ephemeral=True)  # its own, unknown CA
    context = stranger.server_ssl_context(["nominatim.example.com"])
    provider = geo_server.provider()
    with https_server(context, _Refusing) as port, requests.Session() as session:
        session.mount("https://", ContextAdapter(provider.ssl_context, provider.tls_name))
        for verify in (False, requests.certs.where()):
            with pytest.raises(requests.exceptions.SSLError):
                session.get(f"https://127.0.0.1:{port}/status", verify=verify, timeout=5)
    assert provider.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert provider.ssl_context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize("way", WAYS)
def test_nothing_listening_is_a_connect_error(geo_server: Any, way: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        base = geo_server.provider()
        provider = Provider(
            base.name, base.style, "127.0.0.1", port, base.tls_name, base.ssl_context, base.ca_file
        )
        with pytest.raises(ConnectError):
            geocode(ADDRESS, provider=provider, way=way, timeout=2)


def test_raw_way_sends_sni_and_parses_both_framings(geo_server: Any) -> None:
    provider = geo_server.provider()
    search = raw_get(provider, provider.target("Paris", limit=10))
    assert search.status == 200 and search.framing == "chunked" and search.chunks >= 2
    status = raw_get(provider, "/status")
    assert status.framing == "content-length" and status.header("content-type")


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.rfile.read(0)
        threading.Event().wait(1.5)


def test_raw_way_times_out_on_a_silent_server(geo_server: Any) -> None:
    context = geo_server.lab.server_ssl_context(["nominatim.example.com"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        base = geo_server.provider()
        provider = Provider(
            base.name,
            base.style,
            "127.0.0.1",
            server.server_address[1],
            base.tls_name,
            base.ssl_context,
            base.ca_file,
        )
        with pytest.raises(Timeout):
            raw_get(provider, "/search?q=x", timeout=0.5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_rate_limiter_spaces_calls() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(1.0, clock=lambda: now[0], sleep=sleep)
    assert limiter.wait() == 0.0
    now[0] += 0.25
    assert limiter.wait() == pytest.approx(0.75)
    now[0] += 5
    assert limiter.wait() == 0.0
    assert slept == [pytest.approx(0.75)]


def test_providers() -> None:
    with pytest.raises(ConfigError):
        make_provider("bing")
    os.environ.pop("WIRELAB_GOOGLE_API_KEY", None)
    with pytest.raises(ConfigError, match="API key"):
        google_provider()
    google = google_provider("KEY123")
    target = google.target("Paris")
    assert "key=KEY123" in target and "KEY123" not in google.redacted(target)
    nominatim = make_provider("nominatim")
    assert nominatim.limiter is not None and nominatim.limiter.interval == 1.0
    assert "wirelab" in nominatim.user_agent


def test_stringcodes() -> None:
    incoming = decode_incoming()
    assert INCOMING[:2] == b"\xff\xfe" and incoming.text.startswith("Grüße")
    outgoing = encode_outgoing("naïve café")
    assert outgoing.data == "naïve café".encode() and outgoing.size == 12
    with pytest.raises(UnicodeEncodeError):
        encode_outgoing("✓", "ascii")


internet = pytest.mark.skipif(
    not os.environ.get("WIRELAB_INTERNET"), reason="needs the internet (set WIRELAB_INTERNET=1)"
)


@pytest.mark.internet
@internet
@pytest.mark.parametrize("way", WAYS)
def test_real_nominatim(way: str) -> None:
    found = geocode(ADDRESS, provider=make_provider("nominatim"), way=way)
    assert found and abs(found[0].latitude - 41.52) < 0.1
