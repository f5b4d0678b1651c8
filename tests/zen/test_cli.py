"""``wirelab zen ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.zen._tools import c_tools
from wirelab.lab.state import ServiceView
from wirelab.zen._core import ANSWERS
from wirelab.zen.archs import ARCHS


def test_archs_prints_every_name(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("zen", "archs", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == list(ARCHS)
    done = run_wirelab("zen", "archs", "--json", env=wirelab_env)
    listed = {a["name"]: a for a in json.loads(done.stdout)}
    assert list(listed) == list(ARCHS)
    assert listed["asyncore"]["book"] == "srv_legacy2.py"
    assert listed["single"]["concurrent"] is False and listed["asyncore"]["concurrent"] is True


def test_client_asks_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("zen", "client", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines) == sorted(f"{q.decode()} {a.decode()}" for q, a in ANSWERS.items())


@pytest.mark.parametrize("endpoint", ["zen", "inetd-nowait", "inetd-wait"])
def test_client_pipelines_to_each_endpoint(wirelab_env: dict[str, str], endpoint: str) -> None:
    done = run_wirelab(
        "zen", "client", "--lab-endpoint", endpoint, "--pipeline", "500", "--json", env=wirelab_env
    )
    assert done.returncode == 0, done.stderr
    exchanges = json.loads(done.stdout)
    assert len(exchanges) == 500
    assert all(ANSWERS[e["question"].encode()].decode() == e["answer"] for e in exchanges)


def test_client_error_shows_the_errors(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("zen", "client", "--error", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Ugly is better than? Error: unknown aphorism.",
        "(1035 bytes) Error: question too long.",
        "(anything more) (connection closed)",
    ]


def test_an_unknown_service_name_is_one_line_and_exit_1(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("zen", "client", "127.0.0.1", "-p", "nosuchservice", env=wirelab_env)
    assert done.returncode == 1, done.stderr
    assert "wirelab: error: unknown service name" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--arch", "nope", "-p", "0"), "unknown architecture 'nope'"),
        (("bench", "-a", "nope"), "unknown architecture 'nope'"),
        (("bench", "--connections", "ten"), "must be comma-separated numbers"),
        (("bench", "--connections", "6000"), "above 5000 is not supported"),
        (("serve", "", "-p", "0"), "the host is empty"),
        (("serve", "127.0.0.1", "-p", "70000"), "out of range"),
        (("client", "", "-p", "1070"), "the host is empty"),
        (("client", "-e", "x"), "No such option: -e"),
        (("client", "--endpoint", "zen"), "No such option: --endpoint"),
        (("client", "--lab-endpoint", "nope"), "'nope' is not one of zen"),
        (("client", "-t", "0"), "is not a number of seconds above zero"),
        (("bench", "-s", "1"), "No such option: -s"),
    ],
)
def test_usage_errors_exit_2(
    wirelab_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    done = run_wirelab("zen", *args, env=wirelab_env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_for_an_architecture_without_workers_is_a_usage_error(
    wirelab_env: dict[str, str],
) -> None:
    done = run_wirelab(
        "zen", "serve", "-p", "0", "--arch", "selectors", "--workers", "3", env=wirelab_env
    )
    assert done.returncode == 2
    assert "selectors has no workers to set" in done.stderr


def test_client_to_a_closed_port_fails_cleanly(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_wirelab("zen", "client", "127.0.0.1", "-p", str(port), env=wirelab_env)
    assert done.returncode == 1
    assert "refused the connection" in done.stderr


SERVE = ("serve", "127.0.0.1", "-p", "0", "--arch", "selectors")


def test_serve_answers_then_stops_on_interrupt(wirelab_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "zen", *SERVE],
        env=wirelab_env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"listening at 127\.0\.0\.1:(\d+) \(selectors\)", line)
        assert found, line
        with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=5) as sock:
            sock.sendall(b"Simple is better than?Explicit is better than?")
            data = b""
            while data.count(b".") < 2:
                data += sock.recv(100)
        assert data == b"Complex.Implicit."
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_small_bench_writes_json_and_chart(wirelab_env: dict[str, str], tmp_path: Path) -> None:
    c_tools()  # built here first: no gcc skips (fails under make test), a compile error fails
    chart, out = tmp_path / "zen.png", tmp_path / "zen.json"
    done = run_wirelab(
        "zen",
        *("bench", "-a", "uvloop", "-a", "single", "-a", "asyncore", "-c", "1", "-P", "1,4"),
        *("--seconds", "0.2"),
        *("--warmup", "0.1", "--idle", "50", "--json", "--chart", str(chart), "--out", str(out)),
        env=wirelab_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    cells = {(c["server"], c["pipeline"]): c for c in report["cells"]}
    assert cells[("c-epoll", 1)]["rps"] > 0 and cells[("uvloop", 4)]["errors"] == 0
    assert cells[("uvloop", 1)]["ratio"] > 0
    assert cells[("asyncore", 4)]["rps"] > 0 and cells[("asyncore", 4)]["errors"] == 0
    assert "book's framing" in cells[("book-single", 4)]["note"]
    # asynchat splits on every "?": the book's srv_legacy2 design runs pipelined, correctly
    assert cells[("book-asynchat", 4)]["rps"] > 0 and cells[("book-asynchat", 4)]["errors"] == 0
    assert [i["server"] for i in report["idle"]] == ["c-epoll", "uvloop"]
    assert report["idle"][1]["idle_open"] == 50
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert json.loads(out.read_text())["cells"]


def test_lab_endpoints_answer_stdlib_clients(lab_zen: ServiceView) -> None:
    for name in ("zen", "inetd-nowait", "inetd-wait"):
        with socket.create_connection(lab_zen.endpoint(name).sockaddr, timeout=10) as sock:
            sock.sendall(b"Beautiful is better than?" * 3 + b"x?")
            data = b""
            while data.count(b".") < 4:
                chunk = sock.recv(1000)
                assert chunk, f"{name} closed early"
                data += chunk
        assert data == b"Ugly." * 3 + b"Error: unknown aphorism.", name
