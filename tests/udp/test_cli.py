"""``wirelab udp ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import socket
import subprocess
import threading

import pytest

from tests.conftest import run_wirelab
from wirelab.udp.client import send_broadcast


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab("udp", *args, env=env)


def test_client_uses_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "--message", "hello", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reply"] == "Your data was 5 bytes long"
    assert report["attempts"] >= 1 and report["request_id"] is False
    numbered = run(wirelab_env, "client", "--message", "hello", "--request-id", "--json")
    assert numbered.returncode == 0, numbered.stderr
    assert json.loads(numbered.stdout)["reply"] == "Your data was 5 bytes long"


def test_lossy_client_and_mtu(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "--lossy", "-m", "x", "--attempts", "20")
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "--no-such-option"], "No such option"),
        (["client", "127.0.0.1", "-p", "70000"], "port 70000 is out of range"),
        (["client", "127.0.0.1", "-p", "0"], "port 0 is not a server's port"),
        (["mtu", "127.0.0.1", "-p", "0"], "port 0 is not a server's port"),
        (["broadcast", "-p", "0"], "port 0 is not a server's port"),
        (["client", ""], "the host is empty"),
        (["serve", "--drop", "2"], "--drop"),
        (["serve", ""], "the host is empty"),
        (["serve", "-p", "70000"], "out of range"),
        (["listen", "", "-t", "1"], "the host is empty"),
        (["broadcast", "-p", "-1"], "out of range"),
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str], message: str) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr


def test_broadcast_and_listen_report_json(wirelab_env: dict[str, str]) -> None:
    sent = run(wirelab_env, "broadcast", "-p", "9", "-m", "hi", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"sent": 2, "to": "127.255.255.255:9"}
    quiet = run(wirelab_env, "listen", "127.0.0.1", "-p", "0", "-t", "0.2", "--json")
    assert quiet.returncode == 1 and json.loads(quiet.stdout) == []


def test_listen_hears_a_loopback_broadcast_by_default() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got: list[subprocess.CompletedProcess[str]] = []
    listener = threading.Thread(
        target=lambda: got.append(
            run_wirelab("udp", "listen", "-p", str(port), "-t", "10", "--json")
        )
    )
    listener.start()
    try:
        while listener.is_alive():  # resend until it has bound: a broadcast gets no reply
            send_broadcast("127.255.255.255", port, b"Broadcast datagram!")
            listener.join(0.1)
    finally:
        listener.join(15)
    (done,) = got
    assert done.returncode == 0, done.stderr
    (heard,) = json.loads(done.stdout)
    assert heard["text"] == "Broadcast datagram!" and heard["sender"].startswith("127.0.0.1:")
