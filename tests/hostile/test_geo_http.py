"""HTTP request-smuggling shapes and a slowloris after the handshake, against the lab geocoder.

The shapes are the ones issue 11 (item 1) found accepted, plus their usual companions; RFC
9112 says each must be refused. Every shape is sent as exact bytes over a real TLS
connection to the session lab's geocoder, with a second request hidden where a lenient
parser would find it. Expected: one answer, 400 (or 413 for a body over the limit), the
connection closed, no second answer, no Python text in the error, and a normal client
served right after.
"""

from __future__ import annotations

import re
import socket
import ssl
import time

import pytest

from tests.hostile.conftest import SERVED_WITHIN, served, service_endpoints
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState

#: A request a lenient parser would read as a second one, out of the first one's body.
SMUGGLED = b"GET /status?format=json HTTP/1.1\r\nHost: nominatim.example.com\r\n\r\n"

_HEAD = b"GET /status?format=json HTTP/1.1\r\nHost: nominatim.example.com\r\n"

#: name -> (raw request, the statuses it may get)
SHAPES: dict[str, tuple[bytes, set[int]]] = {
    "unicode-digit-content-length": (
        _HEAD + "Content-Length: \u00b2\r\n\r\n".encode() + SMUGGLED,
        {400},
    ),
    "latin-1-superscript-content-length": (
        _HEAD + b"Content-Length: \xb2\r\n\r\n" + SMUGGLED,
        {400},
    ),
    "arabic-indic-digit-content-length": (  # int() reads U+0663 as 3
        _HEAD + "Content-Length: \u0663\r\n\r\n".encode() + b"abc" + SMUGGLED,
        {400},
    ),
    "5000-digit-content-length": (
        _HEAD + b"Content-Length: " + b"1" * 5000 + b"\r\n\r\n" + SMUGGLED,
        {400, 413},
    ),
    "space-before-colon-transfer-encoding": (
        _HEAD + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        {400},
    ),
    "two-different-content-lengths": (
        _HEAD + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        {400},
    ),
    "header-without-colon-then-content-length": (
        _HEAD + b"X-No-Colon\r\nContent-Length: 1025\r\n\r\n" + b"a" * 1025 + SMUGGLED,
        {400},
    ),
    "http11-without-host": (
        b"GET /status?format=json HTTP/1.1\r\n\r\n" + SMUGGLED,
        {400},
    ),
    "content-length-and-transfer-encoding": (
        _HEAD
        + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (len(SMUGGLED) + 5)
        + b"0\r\n\r\n"
        + SMUGGLED,
        {400},
    ),
    "unknown-transfer-coding": (
        _HEAD + b"Transfer-Encoding: xchunked\r\n\r\n" + SMUGGLED,
        {400, 501},  # RFC 9112 6.1: 501 for a coding the server does not understand
    ),
    "negative-content-length": (
        _HEAD + b"Content-Length: -1\r\n\r\n" + SMUGGLED,
        {400},
    ),
    "body-over-the-limit": (
        _HEAD + b"Content-Length: 1025\r\n\r\n" + b"a" * 1025 + SMUGGLED,
        {413},
    ),
}

_STATUS = re.compile(rb"HTTP/1\.[01] ([0-9]{3}) ")


@pytest.fixture(scope="module")
def geo(wirelab_lab: LabState) -> BoundEndpoint:
    """The geocoder's endpoint."""
    return service_endpoints(wirelab_lab, "geo")[0]


def _tls(state: LabState, ep: BoundEndpoint, timeout: float = SERVED_WITHIN) -> ssl.SSLSocket:
    raw = socket.create_connection(ep.sockaddr, timeout=timeout)
    try:
        return state.ssl_context().wrap_socket(raw, server_hostname=ep.host)
    except BaseException:
        raw.close()
        raise


def _answer(tls: ssl.SSLSocket, seconds: float) -> tuple[bytes, bool]:
    """Everything the server says until it closes (True) or ``seconds`` pass (False)."""
    data = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        tls.settimeout(left)
        try:
            chunk = tls.recv(65536)
        except TimeoutError:
            return data, False
        except (ssl.SSLError, OSError):
            return data, True  # reset, or closed without close_notify
        if not chunk:
            return data, True
        data += chunk
    return data, False


@pytest.mark.parametrize("shape", list(SHAPES))
def test_smuggling_shape_refused(wirelab_lab: LabState, geo: BoundEndpoint, shape: str) -> None:
    """Each shape gets one 400 (413), a closed connection, and nothing for the hidden request."""
    raw, allowed = SHAPES[shape]
    with _tls(wirelab_lab, geo) as tls:
        tls.sendall(raw)
        data, closed = _answer(tls, 3.0)
    statuses = [int(code) for code in _STATUS.findall(data)]
    assert statuses, f"no answer to {shape}: {data[:300]!r}"
    assert statuses[0] in allowed, f"{shape}: got {statuses[0]}, wanted {sorted(allowed)}"
    assert len(statuses) == 1, f"{shape}: the hidden request was answered too: {statuses}"
    assert closed, f"{shape}: the connection stayed open after a {statuses[0]}"
    assert b"invalid literal" not in data and b"Traceback" not in data, data[:500]
    served(wirelab_lab, geo, f"after {shape}")


#: Connections of the after-handshake slowloris: more than the geocoder's 64 slots.
SLOW_TLS_CONNECTIONS = 96


def test_slowloris_after_the_handshake(wirelab_lab: LabState, geo: BoundEndpoint) -> None:
    """Clients that finish the handshake, then send a request head a byte at a time (item 2):
    a normal client is still served within 2 s while they dribble."""
    head = b"GET /search?q=Boston&format=json HTTP/1.1\r\nHost: nominatim.example.com\r\n"
    slow: list[ssl.SSLSocket] = []
    try:
        deadline = time.monotonic() + 3.0
        for _ in range(SLOW_TLS_CONNECTIONS):
            if time.monotonic() > deadline:
                break
            try:
                slow.append(_tls(wirelab_lab, geo, timeout=0.5))
            except (OSError, ssl.SSLError):
                continue  # refused or evicted: the server defends itself, as it may
        assert slow, "no slow connection completed its handshake"
        for tick in range(4):
            started = time.monotonic()
            for sock in list(slow):
                try:
                    sock.sendall(head[tick : tick + 1])
                except (OSError, ssl.SSLError):
                    slow.remove(sock)
                    sock.close()
            if tick in (1, 3):
                served(wirelab_lab, geo, f"while {len(slow)} TLS clients dribble a head")
            time.sleep(max(0.0, 0.4 - (time.monotonic() - started)))
    finally:
        for sock in slow:
            sock.close()
    served(wirelab_lab, geo, "after the slow TLS clients left")
