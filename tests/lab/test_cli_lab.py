"""``wirelab lab up --detach / status / down`` as a user runs them, in subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wirelab.lab.state import pid_alive


def wirelab(*args: str, home: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "wirelab", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found |= {child} | _descendants(child)
    return found


@pytest.mark.slow
def test_up_detach_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    up = wirelab("lab", "up", "--detach", "--ephemeral", home=tmp_path)
    assert up.returncode == 0, up.stderr
    status = wirelab("lab", "status", "--json", home=tmp_path)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["services"], "no services in the status"
    for ep in document["services"]:
        assert {"name", "host", "address", "port", "protocol", "tls"} <= set(ep)
        assert ep["address"] in ("127.0.0.1", "::1")
        assert ep["port"] > 0
    assert Path(document["ca"]).is_file()
    assert document["accounts"][0]["user"] == "brandon"
    pid = document["pid"]
    family = {pid} | _descendants(pid)

    again = wirelab("lab", "up", "--detach", "--ephemeral", home=tmp_path)
    assert again.returncode == 1
    assert "already running" in again.stderr

    down = wirelab("lab", "down", home=tmp_path)
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in family if pid_alive(p)], "lab processes survived `lab down`"
    assert not (tmp_path / "lab.json").exists()

    gone = wirelab("lab", "status", home=tmp_path)
    assert gone.returncode == 1
    assert gone.stderr.strip().splitlines() == [
        "wirelab: error: no lab is running (start one with `wirelab lab up --detach`)"
    ]


def test_bind_conflict_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        try:
            taken.bind(("127.0.0.1", 1060))
        except OSError:
            pytest.skip("UDP port 1060 is busy on this machine")
        done = wirelab("lab", "up", "--service", "udp", home=tmp_path, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("wirelab: error: cannot bind UDP 127.0.0.1:1060"), done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_service_and_usage_errors(tmp_path: Path) -> None:
    unknown = wirelab("lab", "up", "--service", "nosuch", home=tmp_path)
    assert unknown.returncode == 1
    assert "unknown lab service nosuch" in unknown.stderr
    usage = wirelab("lab", "up", "--no-such-flag", home=tmp_path)
    assert usage.returncode == 2
    down = wirelab("lab", "down", home=tmp_path)
    assert down.returncode == 0 and "no lab is running" in down.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    plain = wirelab("lab", "status", home=tmp_path)
    assert "Traceback" not in plain.stderr
    debug = wirelab("--debug", "lab", "status", home=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
