"""``wirelab queue ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys

import pytest

from tests.conftest import run_wirelab
from wirelab.lab.state import ServiceView


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab("queue", *args, env=env)


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_pi_json_batched(wirelab_env: dict[str, str], transport: str) -> None:
    done = run(wirelab_env, "pi", "-n", "50000", "--batch", "1000", "--transport", transport,
               "--seed", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["points"] == 50_000 and sum(doc["published"].values()) == 50_000
    assert doc["wire"] == "batch" and doc["batch"] == 1000
    assert abs(doc["estimate"] - math.pi) < 0.05 and doc["messages_per_second"] > 0


def test_pi_speaks_the_book_wire_by_default(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "pi", "--count", "2000", "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["wire"], doc["batch"], doc["tallied"]) == ("book", 1, 2000)
    assert run(wirelab_env, "pi", "--points", "500", "--json").returncode == 0  # the old name


def test_pi_text_with_the_lab_service(lab_queue: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "pi", "-n", "2000", "--pythagoras", "lab", "--json")
    assert done.returncode == 0, done.stderr
    port = lab_queue.endpoint("rep").port
    assert json.loads(done.stdout)["endpoints"]["pythagoras"] == f"tcp://127.0.0.1:{port}"
    text = run(wirelab_env, "pi", "-n", "2000")
    assert text.stdout.startswith("pi ~ ") and "points/s" in text.stdout
    assert "the book's messages, 1 point each" in text.stdout


def test_ask_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "ask", "3", "4", "5", "12")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["3² + 4² = 25", "5² + 12² = 169"]
    batched = run(wirelab_env, "ask", "3", "4", "--wire", "batch", "--json")
    assert json.loads(batched.stdout) == [{"x": 3, "y": 4, "sum": 25}]


def test_errors_are_one_line(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = run(wirelab_env, "pi", "-n", "1000", "--pythagoras", f"tcp://127.0.0.1:{port}",
               "--timeout", "0.5")  # fmt: skip
    assert dead.returncode == 1
    lines = dead.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not answer within 0.5 s" in lines[0]
    refused = run(wirelab_env, "ask", "1", str(2**64))
    assert refused.returncode == 1 and "refused the request" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_serve_answers_until_interrupted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "queue", "serve", "127.0.0.1", "-p", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        assert line == f"listening at tcp://127.0.0.1:{port} (pythagoras)\n"
        asked = run_wirelab("queue", "ask", "6", "8", "-e", f"tcp://127.0.0.1:{port}")
        assert asked.stdout == "6² + 8² = 100\n", asked.stderr
        child.terminate()  # SIGTERM stops it cleanly, as Ctrl-C does
        assert child.wait(10) == 0
        assert child.stderr.read() == "stopped after 1 request(s)\n"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stderr is not None:
            child.stderr.close()


@pytest.mark.parametrize(
    "args",
    [
        ["pi", "--transport", "udp"],
        ["pi", "-n", "0"],
        ["ask", "1", "2", "3"],
        ["pi", "--batch", "0"],
        ["pi", "--wire", "book", "--batch", "10"],
        ["pi", "--wire", "json"],
        ["pi", "-t", "inf"],
        ["pi", "-t", "0"],
        ["pi", "--host", ""],
        ["pi", "--pythagoras", "tcp://127.0.0.1:70000"],
        ["judge", "--pub", "udp://127.0.0.1:6700"],
        ["ask", "3", "4", "-e", "tcp://127.0.0.1"],
        # issue 11, item 7: libzmq would wrap 70000 to 4464 and run
        ["serve", "--endpoint", "tcp://127.0.0.1:70000"],
        ["serve", "127.0.0.1", "-p", "70000"],
        ["serve", "127.0.0.1", "-p", "-1"],
        ["serve", ""],
        ["serve", "127.0.0.1", "-e", "tcp://127.0.0.1:5"],
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"Error|error", done.stderr)


def test_a_bind_conflict_is_one_line_exit_1(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(wirelab_env, "serve", "127.0.0.1", "-p", str(port))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"wirelab: error: cannot bind tcp://127.0.0.1:{port}: Address already in use"
    )
