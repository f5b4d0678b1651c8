"""The lab web host's buffering front (``wirelab.http.front``) against hostile clients.

The front is what keeps gunicorn's threads for complete requests: these are its named
security tests, against the session lab's endpoints (a normal client is served during each)
and against a private front with short limits.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest

from wirelab.http.client import HTTPClient
from wirelab.http.front import FrontLimits, open_front
from wirelab.http.server import GunicornProcess, listen, probe_http
from wirelab.lab.state import ServiceView
from wirelab.net.server import ServerThread

from .conftest import Www


def _answer(address: tuple[str, int], data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(data)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                out += chunk
    return out


def _served(address: tuple[str, int]) -> float:
    started = time.monotonic()
    line = probe_http(address, host_header="www.example.com", path="/ip", timeout=2.0)
    assert line.startswith(b"HTTP/1.1 200"), line
    return time.monotonic() - started


@pytest.fixture
def front(lab_www: ServiceView) -> tuple[str, int]:
    return lab_www.endpoint("http").sockaddr


def test_cl_te_is_refused(front: tuple[str, int]) -> None:
    answer = _answer(
        front,
        b"POST /post HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.count(b"HTTP/1.1 ") == 1  # nothing answered for the smuggled GET


def test_oversized_head_is_431(front: tuple[str, int]) -> None:
    answer = _answer(front, b"GET /get HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_bad_request_line_is_400(front: tuple[str, int]) -> None:
    assert _answer(front, b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_client_forwarding_headers_are_dropped(www: Www) -> None:
    """Only the front sets X-Forwarded-*: a client cannot pose as another address or scheme."""
    with HTTPClient() as client:
        ip = client.get(f"{www.http}/ip", headers={"X-Forwarded-For": "6.6.6.6"})
        url = client.get(f"{www.http}/get", headers={"X-Forwarded-Proto": "https"})
        secure = client.get(f"{www.https}/get")
    assert json.loads(ip.body) == {"origin": "127.0.0.1"}
    assert json.loads(url.body)["url"].startswith("http://")
    assert json.loads(secure.body)["url"].startswith("https://")


def test_responses_keep_gunicorns_head_and_stream(www: Www) -> None:
    with HTTPClient() as client:
        streamed = client.get(f"{www.http}/stream/3")
        head = client.request("HEAD", f"{www.http}/bytes/10")
    assert dict(streamed.headers)["Server"] == "gunicorn"
    assert streamed.framing == "chunked" and streamed.body.count(b"\n") == 3
    assert head.body == b"" and dict(head.headers)["Content-Length"] == "10"


def test_many_slow_and_noisy_clients_stall_nobody(front: tuple[str, int]) -> None:
    """300 clients trickling headers and 20 holding random bytes: gunicorn has 8 threads."""
    held: list[socket.socket] = []
    try:
        for i in range(300):
            sock = socket.create_connection(front, timeout=5)
            held.append(sock)
            sock.sendall(b"GET /" if i % 15 else bytes(range(1, 200)))
        assert _served(front) < 2.0
        for tick in range(3):
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            assert _served(front) < 2.0, f"tick {tick}"
    finally:
        for sock in held:
            sock.close()


@pytest.fixture(scope="module")
def short_front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("front")
    backend = GunicornProcess(
        "wirelab.http.apps:build('time-raw', 'www.example.com')",
        listen("127.0.0.1", 0),
        logfile=tmp / "g.log",
    )
    with backend:
        backend.spawn()
        backend.wait_ready()
        limits = FrontLimits(head_timeout=0.5, body_timeout=0.5, max_body=100)
        with ServerThread(lambda: open_front("127.0.0.1", 0, backend.address, limits=limits)) as s:
            yield s.address


def test_head_timeout_is_408(short_front: tuple[str, int]) -> None:
    started = time.monotonic()
    answer = _answer_after(short_front, b"GET / HTTP/1.1\r\nHost: www.exa", wait=1.5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3


def test_short_body_is_408(short_front: tuple[str, int]) -> None:
    answer = _answer_after(
        short_front,
        b"POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 50\r\n\r\nab",
        wait=1.5,
    )
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_body_over_the_limit_is_413(short_front: tuple[str, int]) -> None:
    answer = _answer(
        short_front,
        b"POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 500\r\n\r\n" + b"x" * 500,
    )
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_the_time_app_behind_the_front(short_front: tuple[str, int]) -> None:
    """The book's statuses pass through the front unchanged (Host checked by the app)."""
    ok = _answer(
        short_front, b"GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
    )
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and b"Server: gunicorn" in ok
    wrong = _answer(short_front, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert wrong.startswith(b"HTTP/1.1 404 ")
    post = _answer(
        short_front, b"POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\n\r\n"
    )
    assert post.startswith(b"HTTP/1.1 501 ")


def _answer_after(address: tuple[str, int], data: bytes, wait: float) -> bytes:
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(data)
        time.sleep(wait)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                out += chunk
    return out
