"""The chapter 10 apps under each server, driven by independent clients (requests, curl).

The book's ``_test.py`` assertions (F58) for every app (raw WSGI, Werkzeug, WebOb) under every
server (gunicorn, waitress, wsgiref): POST 501, Host ``localhost`` 404, ``/foo`` 404,
``/`` and ``/?abc=123`` 200.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from wirelab.http.apps import WireLogger, build, host_name
from wirelab.http.server import (
    GunicornProcess,
    ThreadedServer,
    listen,
    start_waitress,
    start_wsgiref,
)

APPS = ["time-raw", "time-werkzeug", "time-webob"]
SERVERS = ["gunicorn", "waitress", "wsgiref"]


def _serve(server: str, app: str, tmp: Path) -> Iterator[int]:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    if server == "gunicorn":
        child = GunicornProcess(
            f"wirelab.http.apps:build({app!r})", sock, logfile=tmp / "gunicorn.log"
        )
        with child:
            child.spawn()
            child.wait_ready()
            yield port
        return
    starter = start_waitress if server == "waitress" else start_wsgiref
    with starter(build(app), sock):
        yield port


@pytest.fixture(params=[(s, a) for s in SERVERS for a in APPS], ids=lambda p: f"{p[0]}-{p[1]}")
def time_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    yield from _serve(request.param[0], request.param[1], tmp_path)


def test_the_books_status_codes(time_server: int) -> None:
    """F55-F58: the book's black-box test, with requests as the book's client."""
    port = time_server
    with requests.Session() as s:
        r = s.post(f"http://localhost:{port}/", timeout=5)
        assert r.status_code == 501 and r.headers["Content-Type"].startswith("text/plain")
        assert r.headers["Allow"] == "GET, HEAD"
        assert s.get(f"http://localhost:{port}/", timeout=5).status_code == 404
        assert s.get(f"http://127.0.0.1:{port}/foo", timeout=5).status_code == 404
        assert s.get(f"http://127.0.0.1:{port}/foo/", timeout=5).status_code == 404
        ok = s.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert ok.status_code == 200
        assert ok.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert time.strptime(ok.text, "%a %b %d %H:%M:%S %Y")
        assert s.get(f"http://127.0.0.1:{port}/?abc=123", timeout=5).status_code == 200
        head = s.head(f"http://127.0.0.1:{port}/", timeout=5)
        assert head.status_code == 200 and head.content == b""


def test_curl_sees_the_same_codes(tmp_path: Path) -> None:
    """Done-when: the WSGI apps answer the right status codes to curl."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    for port in _serve("gunicorn", "time-webob", tmp_path):

        def code(*args: str) -> str:
            done = subprocess.run(
                [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            return done.stdout

        assert code("-X", "POST", f"http://127.0.0.1:{port}/") == "501"
        assert code(f"http://localhost:{port}/") == "404"
        assert code(f"http://127.0.0.1:{port}/x") == "404"
        assert code(f"http://127.0.0.1:{port}/") == "200"


@pytest.mark.parametrize("app", APPS)
def test_host_parsing(app: str) -> None:
    from werkzeug.test import Client

    for hosts, header, expected in [
        (("127.0.0.1",), "127.0.0.1:8000", 200),
        (("127.0.0.1",), "[::1]:8000", 404),
        (("::1",), "[::1]:8000", 200),
        (("127.0.0.1",), "127.0.0.1.evil:80", 404),
    ]:
        response = Client(build(app, *hosts)).get("/", headers={"Host": header})
        assert response.status_code == expected, (app, hosts, header)
    assert host_name("[::1]") == "::1" and host_name("a:1") == "a" and host_name("a") == "a"


def test_env_app_hides_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRELAB_TEST_SECRET", "hunter2")
    sock = listen("127.0.0.1", 0)
    with start_wsgiref(build("env"), sock) as server:
        r = requests.get(f"http://127.0.0.1:{server.address[1]}/x?y=1", timeout=5)
    assert r.status_code == 200
    assert r.text.startswith("Here is the WSGI environment:\r\n\r\n")
    assert "'PATH_INFO': '/x'" in r.text and "'QUERY_STRING': 'y=1'" in r.text
    assert "hunter2" not in r.text and "WIRELAB_TEST_SECRET" not in r.text
    assert "process environment hidden" in r.text


def test_wire_logger_middleware_shows_both_ways() -> None:
    out = io.StringIO()
    sock = listen("127.0.0.1", 0)
    with start_waitress(WireLogger(build("time-raw"), out), sock) as server:
        r = requests.post(f"http://127.0.0.1:{server.address[1]}/", data=b"ping", timeout=5)
    assert r.status_code == 501
    text = out.getvalue()
    assert "[1] < POST / HTTP/1.1" in text
    assert "[1] < Content-Length: 4" in text
    assert "[1] > HTTP/1.1 501 Not Implemented" in text
    assert "[1] > 501 Not Implemented" in text


def test_gunicorn_wire_log_prints_the_real_bytes(tmp_path: Path) -> None:
    """F47: the book's config.py idea, binary-safe: every byte read and written."""
    sock = listen("127.0.0.1", 0)
    log = tmp_path / "wire.log"
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')", sock, wirelog=True, logfile=log
    ) as child:
        child.spawn()
        child.wait_ready()
        with socket.create_connection(child.address, timeout=5) as conn:
            conn.sendall(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bin: \xff\r\nConnection: close\r\n\r\n"
            )
            while conn.recv(4096):
                pass
        time.sleep(0.3)
        text = log.read_text()
    assert "< GET / HTTP/1.1" in text
    assert "< X-Bin: \\xff" in text
    assert "> HTTP/1.1 200 OK" in text


def test_gunicorn_stops_with_its_workers(tmp_path: Path) -> None:
    sock = listen("127.0.0.1", 0)
    child = GunicornProcess(
        "wirelab.http.apps:build('time-raw')", sock, workers=2, logfile=tmp_path / "g.log"
    )
    try:
        child.spawn()
        child.wait_ready()
        master = child.pid
        deadline = time.monotonic() + 10
        while len(workers := _children(master)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
    finally:
        child.close()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in [master, *workers])


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_threaded_server_closes_cleanly() -> None:
    sock = listen("127.0.0.1", 0)
    server: ThreadedServer = start_wsgiref(build("time-raw"), sock)
    server.close()
    assert sock.fileno() == -1


def test_gunicorn_serves_https_with_our_context(tmp_path: Path) -> None:
    """gunicorn's own TLS (certfile/keyfile through our ssl_context hook), verified by a
    client that trusts only the lab CA."""
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import client_context

    ca = LabCA.load_or_create(tmp_path / "ca")
    cert, key = ca.server_cert_for(["www.example.com"], tmp_path / "ca")
    sock = listen("127.0.0.1", 0)
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')",
        sock,
        certfile=cert,
        keyfile=key,
        logfile=tmp_path / "g.log",
    ) as child:
        child.spawn()
        ctx = client_context(cafile=ca.cert_path)
        child.wait_ready(ctx, "www.example.com")
        with (
            socket.create_connection(child.address, timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="www.example.com") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("server", ["gunicorn", "waitress", "wsgiref"])
def test_serve_command_runs_until_sigterm(server: str) -> None:
    """``wirelab http serve`` as a user runs it: the listening line, answers, ``stopped``."""
    import re
    import signal
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wirelab",
            "http",
            "serve",
            "-p",
            "0",
            "--server",
            server,
            "--app",
            "time-werkzeug",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "listening at" not in line:
            line = proc.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+) \(time-werkzeug on " + server, line)
        assert match, line
        port = int(match.group(1))
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=15)[1]
    assert proc.returncode == 0, rest
    assert rest.strip().splitlines()[-1] == "stopped"
