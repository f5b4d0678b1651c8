"""The lab geocoder over HTTPS, driven by independent clients (http.client, ssl sockets)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from typing import Any
from urllib.parse import quote_plus

import pytest

from wirelab.net.tlsctx import client_context


def connect(srv: Any) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        srv.host, srv.port, timeout=5, context=client_context(cafile=srv.ca)
    )


def get(srv: Any, target: str, **headers: str) -> tuple[int, dict[str, str], Any]:
    conn = connect(srv)
    try:
        conn.request("GET", target, headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, json.loads(body)
    finally:
        conn.close()


def raw(srv: Any, data: bytes, *, read: bool = True) -> bytes:
    ctx = client_context(cafile=srv.ca)
    with (
        socket.create_connection((srv.host, srv.port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="nominatim.example.com") as tls,
    ):
        tls.sendall(data)
        chunks = []
        while read:
            try:
                chunk = tls.recv(65536)
            except (ConnectionError, ssl.SSLError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_nominatim_shape(geo_server: Any) -> None:
    q = quote_plus("207 N. Defiance St, Archbold, OH")
    status, headers, places = get(geo_server, f"/search?q={q}&format=json")
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"].startswith("application/json")
    place = places[0]
    assert isinstance(place["lat"], str) and isinstance(place["lon"], str)
    assert abs(float(place["lat"]) - 41.5214) < 0.05 and abs(float(place["lon"]) + 84.3072) < 0.05
    assert "Archbold" in place["display_name"] and place["class"] == "place"
    assert len(place["boundingbox"]) == 4 and place["licence"]


def test_jsonv2_limit_and_status(geo_server: Any) -> None:
    status, _, places = get(geo_server, "/search?q=Springfield&format=jsonv2&limit=4")
    assert status == 200 and len(places) == 4 and places[0]["category"] == "place"
    assert get(geo_server, "/status?format=json")[2] == {"status": 0, "message": "OK"}


def test_google_shape(geo_server: Any) -> None:
    status, _, doc = get(geo_server, "/maps/api/geocode/json?address=Tokyo%2C+Japan&key=abc")
    assert status == 200 and doc["status"] == "OK"
    location = doc["results"][0]["geometry"]["location"]
    assert abs(location["lat"] - 35.69) < 0.05 and abs(location["lng"] - 139.69) < 0.05
    none = get(geo_server, "/maps/api/geocode/json?address=Atlantis+Nowhere")[2]
    assert none == {"results": [], "status": "ZERO_RESULTS"}


def test_unknown_place_is_200_and_empty(geo_server: Any) -> None:
    status, _, places = get(geo_server, "/search?q=Atlantis%2C+Nowhere&format=json")
    assert status == 200 and places == []


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/search?q=&format=json", 400),
        ("/search?format=json", 400),
        ("/search?q=" + "x" * 10_000 + "&format=json", 400),
        ("/search?q=%ff%fe%fd&format=json", 400),
        ("/search?q=a%00b&format=json", 400),
        ("/search?q=Paris&format=xml", 400),
        ("/search?q=Paris&limit=abc", 400),
        ("/search?" + "&".join(f"p{i}=1" for i in range(40)), 400),
        ("/maps/api/geocode/json?address=", 400),
        ("/nowhere", 404),
    ],
    ids=["empty", "missing", "10kB", "not-utf8", "nul", "xml", "limit", "params", "google", "404"],
)
def test_bad_input_gets_a_json_error(geo_server: Any, target: str, status: int) -> None:
    got, headers, doc = get(geo_server, target)
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert doc.get("error") or doc.get("status") == "INVALID_REQUEST"
    assert get(geo_server, "/search?q=Paris&format=json")[0] == 200  # still serving


def test_raw_non_utf8_bytes_in_the_request_line(geo_server: Any) -> None:
    reply = raw(
        geo_server,
        b"GET /search?q=\xff\xfe&format=json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert status_of(reply) == 400 and b"UTF-8" in reply


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 80 + b"\r\n", 431),
        (b"GET /search?q=a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", 413),
        (b"GET /search?q=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /search?q=a HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
        (b"BREW /pot HTCPCP/1.0\r\n\r\n", 400),
    ],
    ids=[
        "request-line",
        "header-line",
        "header-count",
        "body",
        "chunked-body",
        "bad-length",
        "post",
        "garbage",
    ],
)
def test_limits_and_protocol_errors(geo_server: Any, request_bytes: bytes, status: int) -> None:
    reply = raw(geo_server, request_bytes)
    assert status_of(reply) == status
    assert b"application/json" in reply
    assert get(geo_server, "/status")[0] == 200


def test_keep_alive_http10_and_head(geo_server: Any) -> None:
    conn = connect(geo_server)
    try:
        for query in ("Paris", "Tokyo", "43502"):
            conn.request("GET", f"/search?q={query}&format=json")
            reply = conn.getresponse()
            assert reply.status == 200 and json.loads(reply.read())
        conn.request("HEAD", "/search?q=Paris&format=json")
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
    finally:
        conn.close()
    old = raw(geo_server, b"GET /search?q=Paris&format=json HTTP/1.0\r\n\r\n")
    assert b"Content-Length:" in old and b"chunked" not in old


def test_an_untrusting_client_fails_verification(geo_server: Any) -> None:
    ctx = ssl.create_default_context()  # the system store does not know the lab CA
    with (
        socket.create_connection((geo_server.host, geo_server.port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(sock, server_hostname="nominatim.example.com")
    ctx = client_context(cafile=geo_server.ca)
    with (
        socket.create_connection((geo_server.host, geo_server.port), timeout=5) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(sock, server_hostname="www.python.org")  # wrong name
    assert get(geo_server, "/status")[0] == 200


def test_api_key_is_redacted_in_logs(geo_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wirelab.geo.server")
    get(geo_server, "/maps/api/geocode/json?address=&key=SUPERSECRET")
    get(geo_server, "/maps/api/geocode/json?address=Paris&key=SUPERSECRET")
    assert caplog.records, "nothing was logged"
    assert "SUPERSECRET" not in caplog.text


def test_handshake_and_idle_timeouts(small_geo_server: Any) -> None:
    srv = small_geo_server
    with socket.create_connection((srv.host, srv.port), timeout=5) as silent:
        began = time.monotonic()
        assert silent.recv(10) == b""  # no handshake within 0.5 s: closed
        assert 0.3 < time.monotonic() - began < 3
    conn = connect(srv)
    try:
        conn.request("GET", "/status")
        assert conn.getresponse().read()
        time.sleep(1.0)  # idle longer than head_timeout: the server closes the connection
        conn.request("GET", "/status")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            conn.getresponse().read()
    finally:
        conn.close()


def test_requests_per_connection_are_capped(small_geo_server: Any) -> None:
    conn = connect(small_geo_server)
    try:
        headers = []
        for _ in range(3):
            conn.request("GET", "/status")
            reply = conn.getresponse()
            reply.read()
            headers.append(reply.getheader("Connection"))
        assert headers[-1] == "close" and headers[0] is None
    finally:
        conn.close()
