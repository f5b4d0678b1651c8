"""``wirelab web django serve``: the Django payments app on its own, run as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import run_wirelab


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1", COLUMNS="200")


def test_serve_answers_over_https_and_stops_on_sigterm(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "web", "django", "serve", "-p", "0"],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()  # blocks until it listens (or dies)
        found = re.match(r"listening at 127\.0\.0\.1:(\d+) \(djbank on gunicorn, https", line)
        assert found, line + child.stderr.read() if child.poll() is not None else line
        port = int(found.group(1))
        with requests.Session() as session:
            session.trust_env = False
            session.verify = str(tmp_path / "ca" / "ca.pem")
            page = session.get(f"https://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert page.status_code == 200 and "csrfmiddlewaretoken" in page.text
        assert (tmp_path / "djbank" / "djbank.sqlite3").is_file()
        assert (tmp_path / "djbank" / "secret_key").stat().st_mode & 0o077 == 0
        child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        assert child.wait(30) == 0, rest
        assert rest.strip().endswith("stopped"), rest
        assert "Traceback" not in rest
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stderr is not None:
            child.stderr.close()


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        done = run_wirelab("web", "django", "serve", "-p", str(port), env=_env(tmp_path))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error:"), done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


def test_serve_refuses_an_empty_host_and_a_bad_port(tmp_path: Path) -> None:
    assert run_wirelab("web", "django", "serve", "", env=_env(tmp_path)).returncode == 2
    assert run_wirelab("web", "django", "serve", "-p", "70000", env=_env(tmp_path)).returncode == 2
