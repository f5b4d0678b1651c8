"""``wirelab tcp ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

import pytest

from tests.conftest import run_wirelab
from wirelab.lab.state import ServiceView


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab("tcp", *args, env=env)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_client_uses_the_lab(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client")
    assert done.returncode == 0, done.stderr
    assert "The server said b'Farewell, client'" in done.stdout  # as the book's client prints
    assert "Client has been assigned socket name 127.0.0.1:" in done.stdout


def test_client_json(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reply"] == "Farewell, client"
    assert report["local"] != report["server"]


def test_concurrent_deadlock_mode_finishes(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "deadlock", "4M", "--mode", "concurrent", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bytecount"] == report["received"] == 4 << 20 and report["verified"]


def test_bytecount_is_rounded_up_to_whole_chunks(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "deadlock", "1000")  # halfclose, the book's client, by default
    assert done.returncode == 0, done.stderr
    assert "sent 1008 bytes" in done.stdout and "every byte upper-cased (halfclose" in done.stdout


def test_naive_deadlock_is_one_line_and_exit_1(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "deadlock", "32M", "--mode", "naive", "--timeout", "0.5")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("wirelab: error: deadlock: no progress for 0.5 s after sending ")


def test_explicit_host_and_port(wirelab_env: dict[str, str], lab_tcp: ServiceView) -> None:
    port = lab_tcp.endpoint("upper").port
    done = run(wirelab_env, "deadlock", "127.0.0.1", "64K", "-p", str(port))
    assert done.returncode == 0, done.stderr
    assert "sent 65536 bytes to 127.0.0.1:" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["client", "127.0.0.1", "-p", "nosuchservice"], "unknown service name 'nosuchservice'"),
        (["client", "no-such-host.invalid", "-p", "1060"], "name service failure"),
        (["deadlock", "no-such-host.invalid", "16", "-p", "1061"], "name service failure"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    wirelab_env: dict[str, str], args: list[str], message: str
) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: ") and message in lines[0]


def test_refused_port_is_one_line_and_exit_1(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "client", "127.0.0.1", "-p", str(closed_port()))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["client", "--no-such-option"],
        ["deadlock"],
        ["deadlock", "lots"],
        ["deadlock", "16", "--mode", "sideways"],
        ["deadlock", "a", "b", "16"],
        ["deadlock", "16", "--timeout", "0"],
        ["deadlock", "16", "-t", "inf"],
        ["deadlock", "16", "-m", "naive"],  # -m means --message only; the mode is --mode
        ["deadlock", "", "16"],
        ["serve", ""],
        ["serve", "-p", "70000"],
        ["serve", "--upper", "-p", "-1"],
        ["client", ""],
        ["client", "-t", "0"],
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    assert run(wirelab_env, *args).returncode == 2


@pytest.mark.parametrize(
    ("flags", "request_", "reply"),
    [
        ([], b"Hi there, server", b"Farewell, client"),
        (["--upper"], b"shout", b"SHOUT"),
    ],
)
def test_serve_command_serves_a_stdlib_client(
    wirelab_env: dict[str, str], flags: list[str], request_: bytes, reply: bytes
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "tcp", "serve", "127.0.0.1", "-p", "0", *flags],
        env=wirelab_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()  # "listening at 127.0.0.1:PORT (...)"
        match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        assert match, line
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5) as sock:
            sock.sendall(request_)
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while data := sock.recv(1024):
                got += data
        assert got == reply
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        if server.stderr is not None:
            server.stderr.close()
