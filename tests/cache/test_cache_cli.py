"""``wirelab cache ...`` commands, as subprocesses against the session lab's memcached."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.lab.state import ServiceView


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab("cache", *args, env=env)


def test_squares_warms_up_against_the_lab(
    lab_cache: ServiceView, wirelab_env: dict[str, str]
) -> None:
    """The behaviour, not the clock: misses then hits, every answer right, on the lab's node.

    (How much faster a warm round is depends on the machine: bench/cache_bench.py measures it.)
    """
    done = run(wirelab_env, "squares", "-r", "3", "-n", "300", "--max-n", "200", "--delay",
               "0.001", "--seed", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rounds = report["rounds"]
    # A fresh namespace: the first lookup of each distinct number misses, every later one hits.
    assert rounds[0]["hits"] + rounds[0]["misses"] == 300 and rounds[0]["misses"] > 0
    assert sum(r["misses"] for r in rounds) <= 201  # at most one miss per number 0..200
    assert [r["hit_ratio"] for r in rounds] == sorted(r["hit_ratio"] for r in rounds)
    assert rounds[-1]["hit_ratio"] > 0.9 and report["wrong"] == 0
    assert report["nodes"] == [f"{a}:{p}" for a, p in [lab_cache.endpoint("memcached").sockaddr]]


def test_squares_text_output(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "squares", "-r", "2", "--count", "50", "--delay", "0")
    assert done.returncode == 0, done.stderr
    assert "round  2: 50 lookups in" in done.stdout and "hit ratio" in done.stdout
    old_names = run(wirelab_env, "squares", "--rounds", "1", "--lookups", "5", "--delay", "0")
    assert old_names.returncode == 0, old_names.stderr


def test_no_server_is_one_line(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run(wirelab_env, "squares", "--server", f"127.0.0.1:{port}")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: cannot reach memcached")
    assert "connection refused" in lines[0]


def test_several_servers_repeated_or_comma_separated(
    lab_cache: ServiceView, wirelab_env: dict[str, str]
) -> None:
    host, port = lab_cache.endpoint("memcached").sockaddr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    for args in (
        ["-s", f"{host}:{port}", "-s", f"127.0.0.1:{dead}"],
        ["--servers", f"{host}:{port},127.0.0.1:{dead}"],
    ):
        done = run(wirelab_env, "ping", *args, "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert list(doc["up"]) == [f"{host}:{port}"] and doc["down"] == [f"127.0.0.1:{dead}"]


def test_shards_table_json_and_chart(wirelab_env: dict[str, str], tmp_path: Path) -> None:
    chart = tmp_path / "shards.png"
    done = run(wirelab_env, "shards", "--words", "3000", "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert "ketama" in done.stdout and "4->5" in done.stdout
    # The table fits 80 columns when it is not on a terminal: no header is cut short.
    assert "…" not in done.stdout
    assert all(len(line) <= 80 for line in done.stdout.splitlines() if line.startswith("│"))
    assert chart.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(run(wirelab_env, "shards", "--words", "2000", "--nodes", "3", "--json").stdout)
    assert doc["servers"] == ["server0", "server1", "server2"]


def test_ping_and_where(lab_cache: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "ping")
    assert done.returncode == 0 and ": memcached 1." in done.stdout
    where = run(wirelab_env, "where", "sq:1", "a key")
    host, port = lab_cache.endpoint().sockaddr
    assert f"sq:1 -> {host}:{port} (as sq:1)" in where.stdout
    assert "a key -> " in where.stdout and "#sha256:" in where.stdout
    doc = json.loads(run(wirelab_env, "where", "sq:1", "--json").stdout)
    assert doc == [{"key": "sq:1", "node": f"{host}:{port}", "wire_key": "sq:1"}]


@pytest.mark.parametrize(
    "args",
    [
        ["squares", "--rounds", "0"],
        ["shards", "--nodes", "1"],
        ["shards", "--png", "x.png"],  # the grammar's --chart FILE
        # issue 11, item 7: a 100 kB host name was an IDNA traceback; a port out of range exit 1
        ["ping", "-s", "a" * 100_000],
        ["ping", "-s", "a" * 254],
        ["ping", "-s", "host:70000"],
        ["ping", "-s", "host:-1"],
        ["ping", "-s", ""],
        ["ping", "-s", "bad\x01host"],
        ["where", "k", "-s", "[::1]:99999"],
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr) < 2000


def test_a_host_name_that_cannot_be_encoded_is_one_line_exit_1(
    wirelab_env: dict[str, str],
) -> None:
    """Short enough for DNS, but a label over 63 characters: the IDNA codec refuses it."""
    done = run(wirelab_env, "ping", "-s", "a" * 100 + ".example")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a valid host name" in lines[0], done.stderr
