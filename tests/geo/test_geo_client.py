"""The four ways of geocoding, against the lab geocoder, and their failures."""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wirelab.errors import ConfigError, ConnectError, RemoteProtocolError, Timeout, TLSError
from wirelab.geo.client import WAYS, geocode, raw_get
from wirelab.geo.providers import Provider, RateLimiter, google_provider, make_provider
from wirelab.geo.stringcodes import INCOMING, decode_incoming, encode_outgoing
from wirelab.net.tlsctx import client_context

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


@pytest.mark.parametrize("way", ["requests", "httpclient", "raw"])
def test_server_errors_become_protocol_errors(geo_server: Any, way: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        geocode("x" * 300, provider=geo_server.provider(), way=way)
    assert info.value.code == 400


def test_the_library_way_reports_server_errors(geo_server: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        geocode("x" * 300, provider=geo_server.provider(), way="library")


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
