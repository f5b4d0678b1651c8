"""``wirelab udp ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirelab", "udp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_client_uses_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "--message", "hello", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reply"] == "Your data was 5 bytes long"
    assert report["attempts"] >= 1


def test_lossy_client_and_mtu(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "--lossy", "-m", "x")
    assert done.returncode == 0, done.stderr
    assert "replied 'Your data was 1 bytes long'" in done.stdout
    mtu = run(wirelab_env, "mtu", "--json")
    assert mtu.returncode == 0 and json.loads(mtu.stdout)["too_big_refused"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "127.0.0.1", "-p", "nosuchservice"], "unknown service name 'nosuchservice'"),
        (["client", "no-such-host.invalid", "-p", "1060"], "name service failure"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    wirelab_env: dict[str, str], args: list[str], message: str
) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: ") and message in lines[0]


def test_usage_error_exits_2(wirelab_env: dict[str, str]) -> None:
    assert run(wirelab_env, "client", "--no-such-option").returncode == 2
    out_of_range = run(wirelab_env, "client", "127.0.0.1", "-p", "70000")
    assert out_of_range.returncode == 2 and "port 70000 is out of range" in out_of_range.stderr
    assert run(wirelab_env, "server", "--drop", "2").returncode == 2
