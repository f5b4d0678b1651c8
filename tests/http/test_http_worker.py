"""``wirelab.http.worker.LingerThreadWorker``: gthread whose threads poll for requests.

Driven by the standard library's http.client and raw sockets against real gunicorn children:
kept-alive and pipelined requests, streams that still stream, heads coalesced with bodies
but never held back, a busy connection never keeps another waiting, a slow application holds
only its own thread, a connection that sends nothing holds none, an unread body is still
drained, idle connections are closed after the keep-alive timeout, and many more connections
than threads are all served.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirelab.http.server import DEFAULT_WORKER_CLASS, GunicornProcess, default_workers, listen


def _gunicorn(app: str, tmp: Path, **kwargs: object) -> Iterator[tuple[str, int]]:
    child = GunicornProcess(app, listen("127.0.0.1", 0), logfile=tmp / "g.log", **kwargs)  # type: ignore[arg-type]
    with child:
        child.spawn()
        child.wait_ready()
        yield child.address


@pytest.fixture
def time_app(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from _gunicorn("wirelab.http.apps:build('time-raw')", tmp_path)


@pytest.fixture
def one_thread(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from _gunicorn("wirelab.http.apps:build('time-raw')", tmp_path, threads=1)


@pytest.fixture
def httpbin_two_threads(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from _gunicorn("wirelab.http.apps:build('httpbin')", tmp_path, threads=2)


@pytest.fixture
def two_threads(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from _gunicorn("wirelab.http.apps:build('time-raw')", tmp_path, threads=2)


@pytest.fixture(scope="module")
def httpbin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    yield from _gunicorn("wirelab.http.apps:build('httpbin')", tmp_path_factory.mktemp("hb"))


def test_the_default_is_the_linger_worker() -> None:
    sock = listen("127.0.0.1", 0)
    with GunicornProcess("x:y", sock) as child:
        assert DEFAULT_WORKER_CLASS == "linger"
        assert "wirelab.http.worker.LingerThreadWorker" in child.command()
    assert 1 <= default_workers() <= 8


def test_many_requests_on_one_connection(time_app: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*time_app, timeout=5)
    try:
        for _ in range(200):
            conn.request("GET", "/", headers={"Host": "127.0.0.1"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200 and len(body) == int(response.headers["Content-Length"])
            assert response.headers["Connection"] == "keep-alive"
        conn.request("GET", "/foo", headers={"Host": "127.0.0.1"})
        assert conn.getresponse().status == 404
    finally:
        conn.close()


def _read_responses(sock: socket.socket, count: int) -> tuple[list[bytes], bytes]:
    """The status lines of ``count`` responses with a Content-Length, and what follows."""
    data, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(out)} responses"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        length = int(next(v for n, v in _headers(head) if n.lower() == b"content-length"))
        while len(data) < length:
            data += sock.recv(65536)
        out.append(head.split(b"\r\n", 1)[0])
        data = data[length:]
    return out, data


def _headers(head: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        pairs.append((name.strip(), value.strip()))
    return pairs


def test_pipelined_requests_are_answered_in_order(time_app: tuple[str, int]) -> None:
    """Four requests in one write: the later ones come from gunicorn's buffer, not the socket."""
    with socket.create_connection(time_app, timeout=5) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"GET /?abc=123 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n"
        )
        lines, rest = _read_responses(sock, 3)
        while chunk := sock.recv(65536):
            rest += chunk
    assert [line.split(b" ")[1] for line in lines] == [b"200", b"404", b"200"]
    assert rest.startswith(b"HTTP/1.1 501 ")


def test_head_has_no_body_and_the_connection_lives(time_app: tuple[str, int]) -> None:
    with socket.create_connection(time_app, timeout=5) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 ")  # nothing of a body after the HEAD's head


def test_a_stream_is_not_held_back(httpbin: tuple[str, int]) -> None:
    """The head waits only for the first piece of body: /drip's first byte comes at once."""
    with socket.create_connection(httpbin, timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"GET /drip?numbytes=3&duration=1.5&delay=0 HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = b""
        while b"*" not in answer.partition(b"\r\n\r\n")[2]:
            chunk = sock.recv(4096)
            assert chunk
            answer += chunk
        first = time.monotonic() - started
        while chunk := sock.recv(4096):
            answer += chunk
        whole = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"***")
    assert first < 1.0 < whole


def test_chunked_and_empty_bodies(httpbin: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*httpbin, timeout=10)
    try:
        conn.request("GET", "/stream/5")
        streamed = conn.getresponse()
        lines = streamed.read().splitlines()
        assert streamed.headers["Transfer-Encoding"] == "chunked" and len(lines) == 5
        assert all(json.loads(line)["id"] == i for i, line in enumerate(lines))
        conn.request("GET", "/status/204")
        empty = conn.getresponse()
        assert empty.status == 204 and empty.read() == b""
        conn.request("GET", "/bytes/70000")  # more than one write's worth
        assert len(conn.getresponse().read()) == 70000
    finally:
        conn.close()


def test_a_lingering_thread_never_keeps_another_client_waiting(
    one_thread: tuple[str, int],
) -> None:
    """One thread: client A keeps its connection busy, client B is still served at once.

    The thread lingers on A's connection only while no other connection waits for it.
    """
    stop = threading.Event()
    served_a = [0]

    def busy() -> None:
        conn = http.client.HTTPConnection(*one_thread, timeout=5)
        try:
            while not stop.is_set():
                conn.request("GET", "/", headers={"Host": "127.0.0.1"})
                conn.getresponse().read()
                served_a[0] += 1
        finally:
            conn.close()

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        time.sleep(0.3)
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            conn = http.client.HTTPConnection(*one_thread, timeout=5)
            try:
                conn.request("GET", "/", headers={"Host": "127.0.0.1"})
                assert conn.getresponse().status == 200
            finally:
                conn.close()
            slowest = max(slowest, time.monotonic() - started)
    finally:
        stop.set()
        worker.join(10)
    assert served_a[0] > 10
    assert slowest < 1.0


def test_an_idle_kept_alive_connection_frees_the_thread(one_thread: tuple[str, int]) -> None:
    """A client that keeps its connection open and sends nothing holds no thread."""
    idle = http.client.HTTPConnection(*one_thread, timeout=5)
    try:
        idle.request("GET", "/", headers={"Host": "127.0.0.1"})
        idle.getresponse().read()
        started = time.monotonic()
        other = http.client.HTTPConnection(*one_thread, timeout=5)
        try:
            other.request("GET", "/", headers={"Host": "127.0.0.1"})
            assert other.getresponse().status == 200
        finally:
            other.close()
        assert time.monotonic() - started < 1.0
        idle.request("GET", "/", headers={"Host": "127.0.0.1"})  # and it still works
        assert idle.getresponse().status == 200
    finally:
        idle.close()


def _get(address: tuple[str, int], path: str = "/", host: str = "127.0.0.1") -> float:
    """One GET on a new connection; the seconds it took (it must answer 200)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    finally:
        conn.close()
    return time.monotonic() - started


def test_a_slow_application_holds_only_its_own_thread(
    httpbin_two_threads: tuple[str, int],
) -> None:
    """Two threads: one is inside httpbin's /delay/2, the other serves everyone else meanwhile."""
    slow_took: list[float] = []
    slow = threading.Thread(
        target=lambda: slow_took.append(_get(httpbin_two_threads, "/delay/2", "x"))
    )
    slow.start()
    try:
        time.sleep(0.3)  # the slow request is in the application now
        kept = http.client.HTTPConnection(*httpbin_two_threads, timeout=10)
        try:
            started = time.monotonic()
            for _ in range(10):
                assert _get(httpbin_two_threads, "/get", "x") < 1.0
                kept.request("GET", "/get", headers={"Host": "x"})
                kept_answer = kept.getresponse()
                kept_answer.read()
                assert kept_answer.status == 200
            assert time.monotonic() - started < 1.5  # all twenty while /delay/2 still runs
        finally:
            kept.close()
    finally:
        slow.join(10)
    assert slow_took and slow_took[0] >= 2.0


def test_a_connection_that_sends_nothing_holds_no_thread(one_thread: tuple[str, int]) -> None:
    """One thread, three silent connections: a normal client is still served at once.

    (gunicorn's own gthread gives each new connection a thread to wait up to 5 s for its
    first bytes, so there the normal client waits for the silent ones.)
    """
    silent = [socket.create_connection(one_thread, timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)
        for _ in range(3):
            assert _get(one_thread) < 1.0
        silent[0].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := silent[0].recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")  # and a late first request is answered
    finally:
        for sock in silent:
            sock.close()


def test_an_unread_body_is_drained_before_the_next_request(time_app: tuple[str, int]) -> None:
    """The time app answers a POST 501 without reading its body: the body must not be taken
    for the next request (the worker skips the drain only when nothing is left to read)."""
    body = b"GET /evil HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 20
    with socket.create_connection(time_app, timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # two answers: the 501 (chunked) and the GET's 200; none for the requests in the body
    assert answer.startswith(b"HTTP/1.1 501 ") and answer.count(b"HTTP/1.1 ") == 2
    assert b"\r\n0\r\n\r\nHTTP/1.1 200 " in answer


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    time_app: tuple[str, int],
) -> None:
    """``--keep-alive 5``: a kept-alive connection that sends nothing more is closed then."""
    with socket.create_connection(time_app, timeout=15) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        lines, rest = _read_responses(sock, 1)
        started = time.monotonic()
        assert sock.recv(4096) == b""  # the worker's end of file
        idle = time.monotonic() - started
    assert lines[0].split(b" ")[1] == b"200" and rest == b""
    assert 4.0 <= idle <= 8.0


def test_many_more_connections_than_threads(two_threads: tuple[str, int]) -> None:
    """Two threads, 40 clients each sending 25 requests on one connection: all answered."""
    errors: list[BaseException] = []
    answered = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection(*two_threads, timeout=10)
        try:
            for _ in range(25):
                conn.request("GET", "/", headers={"Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                with lock:
                    answered[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and answered[0] == 40 * 25


def test_a_request_in_flight_is_finished_on_stop(tmp_path: Path) -> None:
    """SIGTERM while httpbin's /delay/1 runs: the answer still arrives whole, then it stops."""
    child = GunicornProcess(
        "wirelab.http.apps:build('httpbin')", listen("127.0.0.1", 0), logfile=tmp_path / "g.log"
    )
    with child:
        child.spawn()
        child.wait_ready()
        took: list[float] = []
        slow = threading.Thread(target=lambda: took.append(_get(child.address, "/delay/1", "x")))
        slow.start()
        time.sleep(0.4)  # the request is in the application
        started = time.monotonic()
        child.stop()
        stopped = time.monotonic() - started
        slow.join(10)
    assert took and 1.0 <= took[0] < 2.0  # answered 200, whole (_get checks both)
    assert stopped < 4.0


def test_the_date_header_is_the_current_second(time_app: tuple[str, int]) -> None:
    """The Date header is formatted once a second, so it must still move with the clock."""
    from email.utils import parsedate_to_datetime

    conn = http.client.HTTPConnection(*time_app, timeout=5)
    try:
        dates = []
        for pause in (0.0, 1.2):
            time.sleep(pause)
            conn.request("GET", "/", headers={"Host": "127.0.0.1"})
            response = conn.getresponse()
            response.read()
            date = parsedate_to_datetime(response.headers["Date"])
            assert response.headers["Date"].endswith(" GMT")
            assert abs(date.timestamp() - time.time()) < 2.0
            dates.append(date)
    finally:
        conn.close()
    assert dates[1] > dates[0]
