"""``wirelab cache ...`` commands, as subprocesses against the session lab's memcached."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wirelab.lab.state import ServiceView


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirelab", "cache", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_squares_warms_up_against_the_lab(
    lab_cache: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run(wirelab_env, "squares", "-r", "3", "-n", "300", "--max-n", "200", "--delay",
               "0.001", "--seed", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    hits = [r["hit_ratio"] for r in report["rounds"]]
    assert hits[0] < hits[-1] and report["wrong"] == 0 and report["speedup"] > 1.5
    assert report["nodes"] == [f"{a}:{p}" for a, p in [lab_cache.endpoint("memcached").sockaddr]]


def test_squares_text_output(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "squares", "-r", "2", "-n", "50", "--delay", "0")
    assert done.returncode == 0, done.stderr
    assert "round  2: 50 lookups in" in done.stdout and "hit ratio" in done.stdout


def test_no_server_is_one_line(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run(wirelab_env, "squares", "--servers", f"127.0.0.1:{port}")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: cannot reach memcached")
    assert "connection refused" in lines[0]


def test_shards_table_json_and_png(wirelab_env: dict[str, str], tmp_path: Path) -> None:
    chart = tmp_path / "shards.png"
    done = run(wirelab_env, "shards", "--words", "3000", "--png", str(chart))
    assert done.returncode == 0, done.stderr
    assert "ketama" in done.stdout and "4->5" in done.stdout
    # The table fits 80 columns when it is not on a terminal: no header is cut short.
    assert "…" not in done.stdout
    assert all(len(line) <= 80 for line in done.stdout.splitlines() if line.startswith("│"))
    assert chart.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(run(wirelab_env, "shards", "-w", "2000", "-n", "3", "--json").stdout)
    assert doc["servers"] == ["server0", "server1", "server2"]


def test_ping_and_where(lab_cache: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "ping")
    assert done.returncode == 0 and ": memcached 1." in done.stdout
    where = run(wirelab_env, "where", "sq:1", "a key")
    host, port = lab_cache.endpoint().sockaddr
    assert f"sq:1 -> {host}:{port} (as sq:1)" in where.stdout
    assert "a key -> " in where.stdout and "#sha256:" in where.stdout


@pytest.mark.parametrize("args", [["squares", "--rounds", "0"], ["shards", "--nodes", "1"]])
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    assert run(wirelab_env, *args).returncode == 2
