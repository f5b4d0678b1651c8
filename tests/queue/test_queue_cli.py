"""``wirelab queue ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys

import pytest

from wirelab.lab.state import ServiceView


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirelab", "queue", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_pi_json(wirelab_env: dict[str, str], transport: str) -> None:
    done = run(wirelab_env, "pi", "-n", "50000", "-t", transport, "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["points"] == 50_000 and sum(doc["published"].values()) == 50_000
    assert abs(doc["estimate"] - math.pi) < 0.05 and doc["messages_per_second"] > 0


def test_pi_text_with_the_lab_service(lab_queue: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "pi", "-n", "20000", "--pythagoras", "lab", "--json")
    assert done.returncode == 0, done.stderr
    port = lab_queue.endpoint("rep").port
    assert json.loads(done.stdout)["endpoints"]["pythagoras"] == f"tcp://127.0.0.1:{port}"
    text = run(wirelab_env, "pi", "-n", "20000")
    assert text.stdout.startswith("pi ~ 3.1") and "points/s" in text.stdout


def test_ask_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "ask", "3", "4", "5", "12")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["3² + 4² = 25", "5² + 12² = 169"]


def test_errors_are_one_line(wirelab_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = run(wirelab_env, "pi", "-n", "1000", "--pythagoras", f"tcp://127.0.0.1:{port}",
               "--timeout", "0.5")  # fmt: skip
    assert dead.returncode == 1
    lines = dead.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not answer within 0.5 s" in lines[0]
    refused = run(wirelab_env, "ask", "1", "99999999999")
    assert refused.returncode == 1 and "refused the request" in refused.stderr


@pytest.mark.parametrize(
    "args", [["pi", "-t", "udp"], ["pi", "-n", "0"], ["ask", "1", "2", "3"], ["pi", "-b", "0"]]
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    assert run(wirelab_env, *args).returncode == 2
