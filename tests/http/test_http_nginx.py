"""Chapter 10's reverse-proxy deployment with nginx itself: ``http serve --behind-nginx``."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from wirelab.errors import ServiceUnavailable
from wirelab.http.nginx import NginxProcess, nginx_binary
from wirelab.http.server import GunicornProcess, listen, probe_http
from wirelab.testing import services_required


@pytest.fixture(scope="module")
def have_nginx() -> None:
    try:
        nginx_binary()
    except ServiceUnavailable as exc:
        if services_required():
            raise
        pytest.skip(str(exc))


@pytest.fixture
def behind(have_nginx: None, tmp_path: Path) -> Iterator[int]:
    """``wirelab http serve --behind-nginx`` as a user runs it; yields nginx's port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wirelab",
            "http",
            "serve",
            "-p",
            "0",
            "--behind-nginx",
            "--app",
            "env",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 30
        while "listening at" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        assert match, line
        yield int(match.group(1))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest = proc.communicate(timeout=15)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, rest
        assert rest.strip().endswith("stopped")


def test_forwarded_headers_come_from_nginx_only(behind: int) -> None:
    r = requests.get(
        f"http://127.0.0.1:{behind}/x",
        headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["Server"] == "nginx"
    assert "'HTTP_X_FORWARDED_FOR': '127.0.0.1'" in r.text
    assert "'HTTP_X_FORWARDED_PROTO': 'http'" in r.text
    assert "'wsgi.url_scheme': 'http'" in r.text
    assert "6.6.6.6" not in r.text


def test_slow_clients_wait_in_nginx_not_in_gunicorn(behind: int) -> None:
    held = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", behind), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
        started = time.monotonic()
        assert probe_http(("127.0.0.1", behind), timeout=3).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 2
    finally:
        for sock in held:
            sock.close()


def test_time_app_statuses_through_nginx(have_nginx: None, tmp_path: Path) -> None:
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')", listen("127.0.0.1", 0), logfile=tmp_path / "g.log"
    ) as backend:
        backend.spawn()
        backend.wait_ready()
        with NginxProcess("127.0.0.1", 0, backend.address) as proxy:
            proxy.start()
            base = f"http://127.0.0.1:{proxy.port}"
            with requests.Session() as s:
                assert s.post(f"{base}/", timeout=10).status_code == 501
                assert s.get(f"http://localhost:{proxy.port}/", timeout=10).status_code == 404
                assert s.get(f"{base}/", timeout=10).status_code == 200
            master = proxy.process.pid if proxy.process else 0
        assert proxy.process is None
    assert master and _gone(master)


def test_fixed_answer(have_nginx: None) -> None:
    with NginxProcess("127.0.0.1", 0, None) as proxy:
        proxy.start()
        assert requests.get(f"http://127.0.0.1:{proxy.port}/", timeout=10).text == "fixed\n"


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie not ours to reap)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def test_nginx_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ServiceUnavailable, match="apt-get install nginx"):
        nginx_binary()
