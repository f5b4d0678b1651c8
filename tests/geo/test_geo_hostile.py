"""What a hostile client found in the lab geocoder (issue 11, items 1 and 2), kept fixed.

Each shape is sent as exact raw bytes over a real TLS connection to the real server; each
test checks the status line, that the server then closes the connection, that nothing else
is answered (a smuggled second request stays unanswered), and that no traceback reaches
the log. The slowloris test uses real slow clients.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.geo.conftest import RunningGeo, _start
from wirelab.geo.api import ApiResponse
from wirelab.geo.gazetteer import Gazetteer
from wirelab.geo.server import Exchange, HTTPLimits
from wirelab.lab.service import LabContext
from wirelab.net.tlsctx import client_context

TLS_NAME = "nominatim.example.com"


@dataclass
class Reply:
    data: bytes
    closed: bool  # the server closed the connection after answering

    @property
    def statuses(self) -> list[int]:
        """Every status line in the reply (a smuggled request would add one)."""
        return [int(code) for code in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", self.data)]


def send_raw(srv: RunningGeo, data: bytes, *, wait: float = 3.0) -> Reply:
    """Send ``data`` over TLS and read until the server closes (or ``wait`` passes)."""
    ctx = client_context(cafile=srv.ca)
    chunks: list[bytes] = []
    closed = False
    with (
        socket.create_connection((srv.host, srv.port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=TLS_NAME) as tls,
    ):
        tls.sendall(data)
        tls.settimeout(wait)
        while True:
            try:
                chunk = tls.recv(65536)
            except TimeoutError:
                break
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
    return Reply(b"".join(chunks), closed)


def status_ok(srv: RunningGeo) -> int:
    conn = http.client.HTTPSConnection(
        srv.host, srv.port, timeout=5, context=client_context(cafile=srv.ca)
    )
    try:
        conn.request("GET", "/status", headers={"Host": TLS_NAME})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of the test; it fails if one carries a traceback."""
    caplog.set_level(logging.DEBUG, logger="wirelab")
    yield caplog
    assert not [r for r in caplog.records if r.exc_info], "a traceback reached the log"
    assert "Traceback" not in caplog.text


HOST = b"Host: nominatim.example.com\r\n"
SEARCH = b"GET /search?q=Paris&format=json HTTP/1.1\r\n"
SMUGGLED = b"GET /status HTTP/1.1\r\n" + HOST + b"\r\n"  # what a smuggler hides in a body

SHAPES = {
    # int() of the raw value: a traceback, no answer.
    "content_length_unicode_digit": (SEARCH + HOST + b"Content-Length: \xb2\r\n\r\n", 400),
    "content_length_unicode_digit_utf8": (
        SEARCH + HOST + "Content-Length: ²\r\n\r\n".encode(),
        400,
    ),
    # Python's 4,300-digit limit on int(): a traceback, no answer.
    "content_length_5000_digits": (
        SEARCH + HOST + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
        400,
    ),
    # Ignored, so the chunked body was read as a second request.
    "transfer_encoding_space_before_colon": (
        SEARCH + HOST + b"Transfer-Encoding : chunked\r\n\r\n" + SMUGGLED,
        400,
    ),
    "two_different_content_lengths": (
        SEARCH + HOST + b"Content-Length: 0\r\nContent-Length: 41\r\n\r\n" + SMUGGLED,
        400,
    ),
    # Later headers were ignored, so Content-Length: 1025 escaped its 413.
    "header_line_without_colon": (
        SEARCH + HOST + b"X-Ok: 1\r\nno colon here\r\nContent-Length: 1025\r\n\r\n",
        400,
    ),
    "http11_without_host": (SEARCH + b"Accept: */*\r\n\r\n", 400),
    "content_length_and_transfer_encoding": (
        SEARCH + HOST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "chunked_request_body": (
        SEARCH + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
    ),
    "content_length_over_the_body_limit": (SEARCH + HOST + b"Content-Length: 1025\r\n\r\n", 413),
    "negative_content_length": (SEARCH + HOST + b"Content-Length: -1\r\n\r\n", 400),
    "host_twice": (SEARCH + HOST + HOST + b"\r\n", 400),
    "nul_in_a_header_value": (SEARCH + HOST + b"X-A: a\x00b\r\n\r\n", 400),
    "http_0_9": (b"GET /search?q=Paris\r\n\r\n", 400),
    "tls_inside_tls": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400),
    "request_line_too_long": (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "header_line_too_long": (SEARCH + HOST + b"X: " + b"y" * 9000 + b"\r\n\r\n", 431),
    "too_many_headers": (SEARCH + HOST + b"X-A: b\r\n" * 80 + b"\r\n", 431),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hostile_shape_gets_its_error_and_a_close(
    geo_server: RunningGeo, log_records: pytest.LogCaptureFixture, shape: str
) -> None:
    data, status = SHAPES[shape]
    reply = send_raw(geo_server, data)
    assert reply.statuses == [status], reply.data[:300]
    assert reply.closed, "the connection stayed open after an error"
    assert b"Connection: close" in reply.data
    assert b"application/json" in reply.data
    assert b"invalid literal" not in reply.data and b"int()" not in reply.data
    assert status_ok(geo_server) == 200  # still serving everyone else


def test_error_text_is_ours_not_pythons(geo_server: RunningGeo) -> None:
    reply = send_raw(geo_server, SEARCH + HOST + b"Content-Length: 1x\r\n\r\n")
    assert reply.statuses == [400]
    assert b"invalid literal" not in reply.data and b"bytearray" not in reply.data
    assert b"Content-Length" in reply.data


@pytest.mark.parametrize(
    "limit",
    ["%C2%B2", "9" * 5000, "%D9%A3", "-1", "1e3"],
    ids=["sup2", "5000", "arabic", "neg", "exp"],
)
def test_a_bad_limit_is_our_400_not_pythons(geo_server: RunningGeo, limit: str) -> None:
    """The issue's "invalid literal for int() with base 10" came from ``limit=²``."""
    target = f"/search?q=Paris&format=json&limit={limit}".encode()
    reply = send_raw(
        geo_server, b"GET " + target + b" HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    )
    assert reply.statuses == [400], reply.data[:300]
    assert b"limit must be a whole number from 1 to 50" in reply.data
    assert b"invalid literal" not in reply.data and b"digits" not in reply.data


def test_non_ascii_request_line_says_so(geo_server: RunningGeo) -> None:
    reply = send_raw(geo_server, b"GET /search?q=\xc3\xa9 HTTP/1.1\r\n" + HOST + b"\r\n")
    assert reply.statuses == [400] and b"not ASCII" in reply.data and reply.closed


def test_pipelined_requests_still_work(geo_server: RunningGeo) -> None:
    two = (
        SEARCH + HOST + b"\r\n" + b"GET /status HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    )
    reply = send_raw(geo_server, two)
    assert reply.statuses == [200, 200] and reply.closed


def test_a_pipelined_flood_gets_max_requests_answers_then_a_close(
    geo_server: RunningGeo, log_records: pytest.LogCaptureFixture
) -> None:
    """150 pipelined requests in one write: 100 answers (the per-connection cap), the last
    with Connection: close, then the connection closes; the rest are never read as requests."""
    reply = send_raw(geo_server, SMUGGLED * 150, wait=5.0)
    assert reply.statuses == [200] * 100 and reply.closed
    assert reply.data.count(b"Connection: close") == 1
    assert status_ok(geo_server) == 200


def test_small_get_body_is_read_and_dropped(geo_server: RunningGeo) -> None:
    body_then_next = SEARCH + HOST + b"Content-Length: 5\r\n\r\nhello" + SMUGGLED
    reply = send_raw(geo_server, body_then_next, wait=1.0)
    assert reply.statuses == [200, 200]  # the body was a body, the next request a request


def test_blank_lines_before_a_request_are_ignored(geo_server: RunningGeo) -> None:
    reply = send_raw(geo_server, b"\r\n\r\n" + b"GET /status HTTP/1.0\r\n\r\n")
    assert reply.statuses == [200] and reply.closed


def test_head_error_has_no_body(geo_server: RunningGeo) -> None:
    reply = send_raw(
        geo_server, b"HEAD /search HTTP/1.1\r\n" + HOST + b"Content-Length: 2000\r\n\r\n"
    )
    assert reply.statuses == [413] and reply.data.endswith(b"\r\n\r\n")


# -- arbitrary bytes ---------------------------------------------------------------------------


def _answer(target: bytes) -> ApiResponse:
    return ApiResponse(200, b'{"target": %d}' % len(target), streamable=len(target) % 2 == 0)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from(
                [SEARCH, HOST, b"\r\n", b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n"]
            ),
        ),
        max_size=12,
    )
)
def test_exchange_any_bytes_give_a_response_or_a_close(pieces: list[bytes]) -> None:
    """Sans-I/O: arbitrary bytes, in arbitrary pieces, never raise; every output is HTTP."""
    exchange = Exchange(HTTPLimits(max_request_line=200, max_header_bytes=400), _answer)
    for piece in [*pieces, b""]:
        out = exchange.receive(piece)
        while out and exchange.buffered:
            assert out.startswith(b"HTTP/1.1 ")
            out = exchange.resume()
        assert out == b"" or out.startswith(b"HTTP/1.1 ")
    assert exchange.closing
    assert exchange.timed_out() == b""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.binary(min_size=1, max_size=2000))
def test_server_any_bytes_give_a_response_or_a_close(
    geo_server: RunningGeo, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    """Over a real TLS connection: a response or a close, within the wait, never a traceback.

    (Blank lines alone are no request: RFC 9112 section 2.2 says to ignore them, and the
    server waits for a request until the head deadline.)"""
    assume(data.strip(b"\r\n"))
    caplog.set_level(logging.DEBUG, logger="wirelab")
    reply = send_raw(geo_server, data + b"\r\n\r\n", wait=3.0)
    assert reply.closed or reply.statuses, "neither an answer nor a close"
    assert not [r for r in caplog.records if r.exc_info]


# -- time: the head deadline and slowloris -----------------------------------------------------


@pytest.fixture
def slow_geo_server(
    tmp_path_factory: pytest.TempPathFactory, gazetteer: Gazetteer
) -> Iterator[RunningGeo]:
    """The default 64 connections, with a 4 s head deadline (10 s by default)."""
    lab = LabContext(state_dir=tmp_path_factory.mktemp("geo-slow"), ephemeral=True)
    running = _start(lab, gazetteer, HTTPLimits(head_timeout=4.0))
    try:
        yield running
    finally:
        running.server.stop()


def test_head_deadline_closes_a_client_that_keeps_trickling(
    small_geo_server: RunningGeo, log_records: pytest.LogCaptureFixture
) -> None:
    srv = small_geo_server  # head_timeout 0.5 s
    ctx = client_context(cafile=srv.ca)
    with (
        socket.create_connection((srv.host, srv.port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=TLS_NAME) as tls,
    ):
        began = time.monotonic()
        got = b""
        tls.settimeout(0.1)
        for byte in SEARCH:  # one byte every 0.1 s: never idle, never a whole head
            with contextlib.suppress(OSError):
                tls.sendall(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                got += tls.recv(4096)
            if got:
                break
        elapsed = time.monotonic() - began
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert 0.4 < elapsed < 2.0


def _slow_client(srv: RunningGeo, ctx: ssl.SSLContext) -> ssl.SSLSocket | None:
    sock = socket.create_connection((srv.host, srv.port), timeout=5)
    try:
        tls = ctx.wrap_socket(sock, server_hostname=TLS_NAME)
    except (OSError, ssl.SSLError):
        sock.close()
        return None
    tls.sendall(b"G")
    tls.setblocking(False)
    return tls


def test_slowloris_does_not_starve_a_normal_client(
    slow_geo_server: RunningGeo, log_records: pytest.LogCaptureFixture
) -> None:
    """70 clients finish the handshake and send one byte every 0.5 s; a normal request is
    answered within 2 s (before the 4 s deadline could free a slot: eviction did), and
    every slow connection is closed by the head deadline."""
    srv = slow_geo_server
    ctx = client_context(cafile=srv.ca)
    slow: dict[ssl.SSLSocket, float] = {}
    closed_after: list[float] = []
    stop = threading.Event()
    try:
        first = time.monotonic()
        for _ in range(70):
            client = _slow_client(srv, ctx)
            if client is not None:
                slow[client] = time.monotonic()
        assert len(slow) >= 64

        def trickle() -> None:
            while not stop.is_set() and slow:
                for client, began in list(slow.items()):
                    try:
                        data = client.recv(4096)
                    except ssl.SSLWantReadError:
                        data = None
                    except (OSError, ssl.SSLError):
                        data = b""
                    if data is not None:  # an answer (408) or a close: the server let go
                        closed_after.append(time.monotonic() - began)
                        del slow[client]
                        client.close()
                        continue
                    with contextlib.suppress(OSError, ssl.SSLError):
                        client.send(b"E")
                stop.wait(0.5)

        trickler = threading.Thread(target=trickle, name="slowloris")
        trickler.start()
        try:
            time.sleep(0.5)  # every slot is taken by now
            began = time.monotonic()
            assert status_ok(srv) == 200
            answered_in = time.monotonic() - began
            assert answered_in < 2.0, f"a normal client waited {answered_in:.2f} s"
            # ... and before the deadline could have freed a slot: eviction made room.
            assert time.monotonic() - first < 4.0
            deadline = time.monotonic() + 8.0
            while slow and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
            trickler.join(10)
        assert not slow, f"{len(slow)} slow connections outlived the head deadline"
        assert max(closed_after) < 4.0 + 2.0  # the deadline, plus scheduling on a busy machine
        assert srv.server.evicted >= 1
        assert status_ok(srv) == 200
    finally:
        for client in slow:
            client.close()


@pytest.fixture
def two_slot_geo_server(
    tmp_path_factory: pytest.TempPathFactory, gazetteer: Gazetteer
) -> Iterator[RunningGeo]:
    """Two connections, and timeouts (5 s) longer than any wait the tests allow."""
    lab = LabContext(state_dir=tmp_path_factory.mktemp("geo-two"), ephemeral=True)
    limits = HTTPLimits(max_connections=2, handshake_timeout=5.0, head_timeout=5.0)
    running = _start(lab, gazetteer, limits)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.mark.parametrize("stage", ["handshake", "head", "keep-alive"])
def test_a_waiting_connection_is_evicted_for_a_new_one(
    two_slot_geo_server: RunningGeo, log_records: pytest.LogCaptureFixture, stage: str
) -> None:
    """Two connections wait (mid-head, or idle between requests) in both slots; a third is
    served at once, and the quieter of the two is closed. Connections still in their TLS
    handshake take no slot (the event loop holds them, under the handshake timeout)."""
    srv = two_slot_geo_server
    ctx = client_context(cafile=srv.ca)
    holders: list[socket.socket] = []
    try:
        for _ in range(2):
            sock = socket.create_connection((srv.host, srv.port), timeout=5)
            if stage != "handshake":
                sock = ctx.wrap_socket(sock, server_hostname=TLS_NAME)
                if stage == "head":
                    sock.sendall(b"GET /sta")
                else:
                    sock.sendall(b"GET /status HTTP/1.1\r\n" + HOST + b"\r\n")
                    assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
            holders.append(sock)
            time.sleep(0.05)
        time.sleep(0.1)
        began = time.monotonic()
        assert status_ok(srv) == 200
        assert time.monotonic() - began < 1.0  # far below the 5 s timeouts: eviction did it
        if stage == "handshake":
            assert srv.server.evicted == 0
            return
        holders[0].settimeout(2.0)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            assert holders[0].recv(10) == b""  # the quieter was evicted
        assert srv.server.evicted == 1
    finally:
        for sock in holders:
            sock.close()


def test_limits_must_be_above_zero() -> None:
    from wirelab.errors import ConfigError

    for bad in ({"head_timeout": 0.0}, {"max_connections": 0}, {"io_timeout": float("inf")}):
        with pytest.raises(ConfigError):
            HTTPLimits(**bad)  # type: ignore[arg-type]


def test_reset_connections_leave_nothing_behind(
    geo_server: RunningGeo, log_records: pytest.LogCaptureFixture
) -> None:
    """Connections that send a few bytes and reset (before, during and after the handshake)
    leave no unclosed socket (ResourceWarning), no traceback, and a server that serves."""
    ctx = client_context(cafile=geo_server.ca)
    linger = (socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    for round_ in range(40):
        sock = socket.create_connection((geo_server.host, geo_server.port), timeout=5)
        sock.setsockopt(*linger)  # close() sends a reset
        try:
            if round_ % 3 == 0:
                sock.sendall(b"GET / HTTP/1.1\r\n")  # plaintext where TLS is expected
            elif round_ % 3 == 1:
                tls = ctx.wrap_socket(sock, server_hostname=TLS_NAME)
                tls.sendall(SEARCH)
                sock = tls
        finally:
            sock.close()
    time.sleep(0.3)
    assert status_ok(geo_server) == 200


def test_a_closing_answer_is_not_held_by_nagle(geo_server: RunningGeo) -> None:
    """The answer and the close (TLS close_notify, FIN) leave without waiting for the
    client's delayed ACK: with Nagle's algorithm on, each connection took 40 ms more."""
    ctx = client_context(cafile=geo_server.ca)
    took = []
    for _ in range(5):
        with (
            socket.create_connection((geo_server.host, geo_server.port), timeout=5) as sock,
            ctx.wrap_socket(sock, server_hostname=TLS_NAME) as tls,
        ):
            began = time.perf_counter()
            tls.sendall(b"GET /status HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
            while tls.recv(4096):
                pass
            took.append(time.perf_counter() - began)
    assert min(took) < 0.035, f"the fastest of 5 took {min(took) * 1000:.0f} ms"
