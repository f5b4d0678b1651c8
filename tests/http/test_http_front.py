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
from wirelab.http.front import MIN_RESPONSE_BUFFER, FrontLimits, FrontStats, open_front
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


def _slow_reader(address: tuple[str, int], request: bytes) -> socket.socket:
    """A client with a tiny receive window that sends ``request`` and reads nothing yet."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(address)
    sock.sendall(request)
    return sock


def _echo_request(size: int) -> bytes:
    """POST /anything with ``size`` bytes of text: httpbin answers them back (JSON)."""
    return (
        b"POST /anything HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n" % size
    ) + b"a" * size


@pytest.fixture(scope="module")
def httpbin_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """httpbin on a private gunicorn of 4 threads."""
    tmp = tmp_path_factory.mktemp("buffering")
    sock = listen("127.0.0.1", 0)
    # Bounded kernel buffers on gunicorn's side (accepted sockets inherit the listener's), so
    # what the tests see is the front's buffering, not loopback's autotuned megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    backend = GunicornProcess(
        "wirelab.http.apps:build('httpbin')",
        sock,
        threads=4,
        forwarded_allow_ips="127.0.0.1",
        logfile=tmp / "g.log",
    )
    with backend:
        backend.spawn()
        backend.wait_ready()
        yield backend.address


@contextlib.contextmanager
def _front_to(
    backend: tuple[str, int], limits: FrontLimits | None = None
) -> Iterator[tuple[tuple[str, int], FrontStats]]:
    stats = FrontStats()
    small = ((socket.SOL_SOCKET, socket.SO_SNDBUF, 65536),)  # the front's client sockets too
    with ServerThread(
        lambda: open_front("127.0.0.1", 0, backend, limits=limits, sock_options=small, stats=stats)
    ) as server:
        yield server.address, stats


def test_slow_readers_do_not_hold_gunicorn_threads(httpbin_backend: tuple[str, int]) -> None:
    """8 clients read a 6 MB answer slowly; gunicorn has 4 threads; a ninth is served.

    The front takes each answer from gunicorn as fast as gunicorn writes it (it fits the
    response buffer), so the thread is free when gunicorn has written it, however slowly
    the client reads. Relayed at the client's pace (the front before decision 0091), the
    first four answers held the four threads and the other clients waited for good.
    """
    request = _echo_request(6_000_000)
    held: list[socket.socket] = []
    with _front_to(httpbin_backend) as (front, stats):
        try:
            for _ in range(8):
                held.append(_slow_reader(front, request))
            for sock in held:
                assert sock.recv(1) == b"H"  # every answer has begun
            assert _served(front) < 2.0
            deadline = time.monotonic() + 10
            while stats.buffered < 8 * 5_500_000 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert stats.buffered >= 8 * 5_500_000  # the 8 answers are in the front
            assert stats.streamed == 0
        finally:
            for sock in held:
                sock.close()


def _read_answer(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_response_over_the_buffer_streams_within_it(httpbin_backend: tuple[str, int]) -> None:
    """Past ``response_buffer`` the front waits for the client: memory stays bounded, and
    the client still gets every byte."""
    limits = FrontLimits(response_buffer=256 * 1024)
    with _front_to(httpbin_backend, limits) as (front, stats):
        request = _echo_request(3_000_000).replace(
            b"Content-Type", b"Connection: close\r\nContent-Type"
        )
        with _slow_reader(front, request) as sock:
            assert sock.recv(1) == b"H"
            time.sleep(1.0)  # the client stalls; gunicorn has written far more than 256 KiB
            assert stats.streamed >= 1
            assert stats.buffered <= 256 * 1024 + 65536 + 1024
            answer = b"H" + _read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["data"] == "a" * 3_000_000
    assert stats.peak <= 256 * 1024 + 65536 + 1024


def test_the_budget_bounds_all_responses_together(httpbin_backend: tuple[str, int]) -> None:
    limits = FrontLimits(buffer_budget=1024 * 1024)
    request = _echo_request(2_000_000)
    held: list[socket.socket] = []
    with _front_to(httpbin_backend, limits) as (front, stats):
        try:
            for _ in range(3):
                held.append(_slow_reader(front, request))
            for sock in held:
                assert sock.recv(1) == b"H"
            time.sleep(1.0)
            assert stats.streamed >= 2
        finally:
            for sock in held:
                sock.close()
    # the budget, plus the minimum each response keeps, plus one read in flight each
    assert stats.peak <= 1024 * 1024 + 3 * (MIN_RESPONSE_BUFFER + 65536 + 1024)


def test_streams_still_stream(front: tuple[str, int]) -> None:
    """Buffering does not wait for the end: /drip's first byte comes at once."""
    with socket.create_connection(front, timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"GET /drip?numbytes=4&duration=2&delay=0 HTTP/1.1\r\n"
            b"Host: www.example.com\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while b"*" not in answer.partition(b"\r\n\r\n")[2]:
            answer += sock.recv(4096)
        first = time.monotonic() - started
        answer += _read_answer(sock)
        whole = time.monotonic() - started
    assert answer.endswith(b"****")
    assert first < 1.2 < whole


def test_request_bodies_share_the_budget(httpbin_backend: tuple[str, int]) -> None:
    """Bodies held while they arrive count in the budget: past it a new body is refused with
    503 (the others are unharmed), and the budget is free again once they are forwarded."""
    limits = FrontLimits(body_budget=1024 * 1024)
    size = 800_000
    request = _echo_request(size).replace(b"Content-Type", b"Connection: close\r\nContent-Type")
    with _front_to(httpbin_backend, limits) as (front, stats):
        with socket.create_connection(front, timeout=10) as first:
            first.sendall(request[:-1000])  # all but the end: held by the front
            deadline = time.monotonic() + 5
            while stats.bodies < size - 2000 and time.monotonic() < deadline:
                time.sleep(0.02)
            second = _answer(front, request)
            assert second.startswith(b"HTTP/1.1 503 "), second[:100]
            small = _answer(front, _echo_request(1000))  # a small body is always taken
            assert small.startswith(b"HTTP/1.1 200 ")
            first.sendall(request[-1000:])
            answer = _read_answer(first)
        assert answer.startswith(b"HTTP/1.1 200 ")
        again = _answer(front, request)
        assert again.startswith(b"HTTP/1.1 200 ")
        assert stats.bodies == 0 and stats.refused_bodies == 1
