"""``wirelab rpc serve --workers N``: worker processes sharing the port, supervised.

Real processes, real loopback sockets; which worker answered is read from /proc (the worker
process that holds the server's end of the client's connection).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from tests.conftest import run_wirelab
from wirelab.cli import app
from wirelab.errors import ConfigError
from wirelab.net.addresses import listen_tcp
from wirelab.rpc.client import JSONRPCClient
from wirelab.rpc.workers import WorkerPool, default_workers

try:  # a recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - an older typer, on click itself
    from click import ClickException  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")

CALL = xmlrpc.client.dumps((1, 2), "addtogether").encode()
REQUEST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(CALL) + CALL


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    pids: list[int]
    line: str


def _start(*args: str) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "rpc", "serve", "-p", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"listening at 127\.0\.0\.1:(\d+) .*pids ([\d ]+)\)", line)
    if match is None:
        process.kill()
        process.communicate(timeout=10)
        raise AssertionError(line)
    pids = [int(p) for p in match.group(2).split()]
    return Served(process, int(match.group(1)), pids, line)


def _stop(served: Served, signum: int = signal.SIGTERM) -> str:
    served.process.send_signal(signum)
    _, err = served.process.communicate(timeout=20)
    return err


@pytest.fixture
def two_workers() -> Iterator[Served]:
    served = _start("--kind", "xmlrpc", "--workers", "2")
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate(timeout=10)
        for pid in served.pids:
            _gone(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)  # do not leave it to the next test
            return False
        time.sleep(0.05)
    return True


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _server_end(client: socket.socket) -> int:
    """The inode of the server's end of ``client``'s connection (from /proc/net/tcp)."""
    server_port = client.getpeername()[1]
    client_port = client.getsockname()[1]
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return int(fields[9])
    raise AssertionError("the server's end of the connection is not in /proc/net/tcp")


def _who_answers(port: int, pids: list[int]) -> int:
    """Make one call on a new connection; the pid of the worker that holds it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(REQUEST)
        answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"<int>3</int>" in answer, answer
        inode = _server_end(client)
        holders = [pid for pid in pids if inode in _socket_inodes(pid)]
        assert len(holders) == 1, holders
        return holders[0]


def test_two_workers_both_answer_and_stop_cleanly(two_workers: Served) -> None:
    served = two_workers
    assert "2 worker processes" in served.line and "XML-RPC" in served.line
    assert len(set(served.pids)) == 2
    assert sorted(_children(served.process.pid)) == sorted(served.pids)
    seen: set[int] = set()
    for _ in range(200):
        seen.add(_who_answers(served.port, served.pids))
        if len(seen) == 2:
            break
    assert seen == set(served.pids)
    # The stdlib client as well (it keeps its connection alive, HTTP/1.1).
    with xmlrpc.client.ServerProxy(f"http://127.0.0.1:{served.port}/RPC2") as proxy:
        assert [proxy.addtogether(i, 1) for i in range(20)] == [i + 1 for i in range(20)]
    err = _stop(served)
    assert served.process.returncode == 0, err
    assert err.strip().endswith("stopped") and "Traceback" not in err
    assert all(_gone(pid) for pid in served.pids), "a worker outlived the server"


def test_a_killed_worker_is_replaced_and_the_others_serve_meanwhile(two_workers: Served) -> None:
    served = two_workers
    victim, survivor = served.pids
    os.kill(victim, signal.SIGKILL)
    assert _gone(victim)
    # Served at once, by the survivor (or already by the replacement).
    with xmlrpc.client.ServerProxy(f"http://127.0.0.1:{served.port}/") as proxy:
        assert proxy.addtogether(2, 3) == 5
    deadline = time.monotonic() + 20
    while True:
        children = _children(served.process.pid)
        if len(children) == 2 and victim not in children:
            break
        assert time.monotonic() < deadline, children
        time.sleep(0.05)
    assert survivor in children
    (replacement,) = set(children) - {survivor}
    # The replacement serves: keep calling until it has answered one.
    for _ in range(200):
        if _who_answers(served.port, children) == replacement:
            break
    else:
        raise AssertionError("the replacement worker never answered")
    err = _stop(served)
    assert served.process.returncode == 0, err
    words = " ".join(err.split())  # the log handler wraps lines at the terminal's width
    assert f"rpc worker 0 (pid {victim}) died (signal 9): restarting it" in words
    assert all(_gone(pid) for pid in children)


def test_ctrl_c_stops_every_worker(two_workers: Served) -> None:
    served = two_workers
    err = _stop(served, signal.SIGINT)
    assert served.process.returncode == 0, err
    assert "Traceback" not in err
    assert all(_gone(pid) for pid in served.pids)


def test_workers_stop_when_the_server_is_killed(two_workers: Served) -> None:
    served = two_workers
    served.process.kill()  # SIGKILL: no chance to stop them: their stdin pipe ends
    served.process.communicate(timeout=10)
    assert all(_gone(pid) for pid in served.pids), "orphan workers"


def test_jsonrpc_with_workers() -> None:
    served = _start("--kind", "jsonrpc", "-w", "3")
    try:
        assert "JSON-RPC 2.0; 3 worker processes" in served.line
        with JSONRPCClient(f"http://127.0.0.1:{served.port}/") as client:
            assert client.call("lengths", "ab") == [[2, "ab"]]
        err = _stop(served)
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate(timeout=10)
    assert served.process.returncode == 0, err
    assert all(_gone(pid) for pid in served.pids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "0"), "0 is not a number of workers from 1 to 64"),
        (("--workers", "-3"), "-3 is not a number of workers from 1 to 64"),
        (("-w", "65"), "65 is not a number of workers from 1 to 64"),
        (("-w", "99999999999999999999999"), "is not a number of workers from 1 to 64"),
        (("-w", "two"), "Input should be a valid integer"),
        (("--kind", "rpyc", "-w", "2"), "rpyc is served from one process"),
    ],
)
def test_bad_workers_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    command = typer.main.get_command(app)
    with pytest.raises(ClickException) as caught:
        command.main(args=["rpc", "serve", "-p", "0", *args], standalone_mode=False)
    assert caught.value.exit_code == 2
    assert message in caught.value.format_message()


def test_a_bad_worker_count_is_exit_2_and_one_line() -> None:
    done = run_wirelab("rpc", "serve", "-p", "0", "--workers", "0", timeout=30)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Invalid value for '--workers': 0 is not a number of workers from 1 to 64"
    ]
    assert "Traceback" not in done.stderr


def test_default_workers_is_one_per_cpu_capped() -> None:
    assert default_workers() == max(1, min(os.cpu_count() or 1, 8))


def test_the_pool_refuses_rpyc_and_silly_counts() -> None:
    with socket.socket() as sock:
        with pytest.raises(ConfigError, match="one process"):
            WorkerPool("rpyc", sock, 2)
        with pytest.raises(ConfigError, match="1 to 64"):
            WorkerPool("xmlrpc", sock, 0)


def test_a_pool_gives_up_when_workers_keep_dying() -> None:
    async def scenario() -> tuple[str, int]:
        pool = WorkerPool(
            "xmlrpc", listen_tcp("127.0.0.1", 0), 1, max_restarts=1, restart_window=60.0
        )
        await pool.start()
        try:
            first = pool.pids[0]
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while pool.restarts < 1 or pool.pids[0] == first:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            second = pool.pids[0]
            os.kill(second, signal.SIGKILL)
            async with asyncio.timeout(20):
                reason = await pool.failed
            return reason, second
        finally:
            await pool.aclose()

    reason, second = asyncio.run(scenario())
    assert f"(pid {second}) died (signal 9): 2 deaths in 60 s, giving up" in reason
