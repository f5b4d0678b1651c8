"""Hostile HTTP clients against the servers we start: bounded, a 4xx or a close, nobody waits.

Named security tests, each on real sockets against gunicorn (>= 23, with ``http serve``'s
default worker, ``linger``, a gthread) and, where the shape applies, waitress: oversized
request lines and headers, bad methods, a client trickling its headers (slowloris), a body
shorter than its Content-Length, and Content-Length + Transfer-Encoding smuggling shapes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirelab.http.apps import build
from wirelab.http.server import GunicornProcess, listen, probe_http, start_waitress

#: Seconds within which a normal client must be answered while the attack goes on.
SERVED_WITHIN = 3.0


@pytest.fixture(scope="module")
def gunicorn_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The time app under gunicorn's default worker (linger: gthread, 8 threads)."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    sock = listen("127.0.0.1", 0)
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')", sock, threads=8, logfile=tmp / "g.log"
    ) as child:
        child.spawn()
        child.wait_ready()
        yield child.address[1]


@pytest.fixture(scope="module")
def waitress_port() -> Iterator[int]:
    sock = listen("127.0.0.1", 0)
    with start_waitress(build("time-raw"), sock) as server:
        yield server.address[1]


@pytest.fixture(scope="module")
def ports(gunicorn_port: int, waitress_port: int) -> dict[str, int]:
    """Both servers, started before any test's leak check begins."""
    return {"gunicorn": gunicorn_port, "waitress": waitress_port}


def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data``, half-close, and return everything the server answered before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    if not answer:
        return 0  # closed without a word: allowed for an attack
    return int(answer.split(b" ", 2)[1])


def normal_client_served(port: int) -> float:
    started = time.monotonic()
    line = probe_http(("127.0.0.1", port), timeout=SERVED_WITHIN)
    assert line.startswith(b"HTTP/1.1 200"), line
    return time.monotonic() - started


GOOD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_oversized_request_line(server: str, ports: dict[str, int]) -> None:
    port = ports[server]
    answer = exchange(port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_of(answer) == 414 if server == "gunicorn" else status_of(answer) in (0, 400, 431)
    normal_client_served(port)


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_oversized_header(server: str, ports: dict[str, int]) -> None:
    port = ports[server]
    answer = exchange(
        port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n"
    )
    assert status_of(answer) == 431 if server == "gunicorn" else status_of(answer) in (0, 400, 431)
    normal_client_served(port)


def test_too_many_headers_gunicorn(gunicorn_port: int) -> None:
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    answer = exchange(gunicorn_port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
    assert status_of(answer) == 431


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_bad_method(server: str, ports: dict[str, int]) -> None:
    port = ports[server]
    answer = exchange(port, b"G\x00T / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_of(answer) in (0, 400, 501)
    assert b"200 OK" not in answer
    normal_client_served(port)


def test_cl_te_smuggling_refused_by_gunicorn(gunicorn_port: int) -> None:
    """CL.TE: both framings at once is refused (400), never a second request smuggled."""
    smuggled = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 44\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    answer = exchange(gunicorn_port, smuggled)
    assert status_of(answer) == 400
    assert answer.count(b"HTTP/1.1 ") <= 1  # no answer to the smuggled GET


@pytest.mark.parametrize(
    "te",
    [b"chunked, identity", b"chunked\r\nTransfer-Encoding: chunked", b"xchunked", b"identity"],
    ids=["chunked-identity", "twice", "xchunked", "identity"],
)
def test_odd_transfer_encodings_refused_by_gunicorn(gunicorn_port: int, te: bytes) -> None:
    answer = exchange(
        gunicorn_port,
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
        + te
        + b"\r\n\r\n0\r\n\r\n"
        + GOOD,
    )
    assert answer.count(b"HTTP/1.1 200") == 0  # the trailing GET was not smuggled through
    assert status_of(answer) in (0, 400, 501)


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_body_shorter_than_content_length(server: str, ports: dict[str, int]) -> None:
    port = ports[server]
    started = time.monotonic()
    answer = exchange(port, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc")
    assert time.monotonic() - started < 10
    assert status_of(answer) in (0, 400, 501)
    normal_client_served(port)


def test_slowloris_does_not_stall_others_on_gunicorn(gunicorn_port: int) -> None:
    slowloris_does_not_stall_others(gunicorn_port)


def test_slowloris_does_not_stall_others_on_waitress(waitress_port: int) -> None:
    slowloris_does_not_stall_others(waitress_port)


def slowloris_does_not_stall_others(port: int) -> None:
    """Three clients trickle their headers one byte every 0.2 s; a normal client is served.

    Each test names its server's fixture as an argument (not ``request.getfixturevalue``), so
    a server that a test is the first to need starts before the leak check's snapshot.
    """
    stop = threading.Event()
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]

    def trickle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 1000:
                if stop.wait(0.2):
                    return
                conn.send(bytes([byte]))

    threads = [threading.Thread(target=trickle, args=(c,)) for c in conns]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        for _ in range(3):
            assert normal_client_served(port) < SERVED_WITHIN
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for conn in conns:
            conn.close()


def test_pipelined_requests_answered_in_order(gunicorn_port: int) -> None:
    answer = exchange(
        gunicorn_port,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.index(b"HTTP/1.1 200") < answer.index(b"HTTP/1.1 404")


def test_gunicorn_log_has_no_traceback(
    gunicorn_port: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("gunicorn*/g.log"))
    assert logs
    for log in logs:
        assert "Traceback" not in log.read_text()
