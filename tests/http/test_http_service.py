"""The lab's web host: starts with the lab, restarts a gunicorn that dies, stops leaving nothing."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

from wirelab.http.server import probe_http
from wirelab.testing import private_lab


def _gunicorns_of(pid: int) -> set[int]:
    """Every process below ``pid`` (gunicorn masters and their workers)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                child = int(entry.parent.name)
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_www_restarts_a_dead_gunicorn_and_stops_clean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.http")
    others = _gunicorns_of(os.getpid())  # the session lab's, when it runs in this process
    with private_lab(["www"], tmp_path) as state:
        http = state.endpoint("www", "http")
        https = state.endpoint("www", "https")
        assert https.tls and not http.tls and http.host == "www.example.com"
        children = _gunicorns_of(os.getpid()) - others
        assert len(children) >= 2  # the gunicorn master and its worker
        ctx = state.ssl_context()
        assert probe_http(
            https.sockaddr,
            ssl_context=ctx,
            server_hostname="www.example.com",
            host_header="www.example.com",
            path="/get",
        ).startswith(b"HTTP/1.1 200")
        masters = [
            pid
            for pid in children
            if "gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            and int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            == os.getpid()
        ]
        assert len(masters) == 1
        os.kill(masters[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ok = probe_http(http.sockaddr, host_header="www.example.com", path="/get")
                ok2 = probe_http(
                    https.sockaddr,
                    ssl_context=ctx,
                    server_hostname="www.example.com",
                    host_header="www.example.com",
                    path="/get",
                )
            except OSError:
                ok = ok2 = b""
            # (the killed master's worker may still answer until it sees its parent gone)
            restarted = any("starting it again" in r.getMessage() for r in caplog.records)
            if restarted and ok.startswith(b"HTTP/1.1 200") and ok2.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed gunicorn was not replaced")
        assert any("killed by SIGKILL; starting it again" in r.getMessage() for r in caplog.records)
        alive = _gunicorns_of(os.getpid()) - others
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in alive) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in alive if _running(pid)], "gunicorn processes outlived the lab"
