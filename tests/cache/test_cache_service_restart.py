"""The cache service watches its memcached children: a dead one is reaped, logged, restarted."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wirelab.cache.service import CacheService, lab_nodes
from wirelab.errors import ConfigError
from wirelab.lab.service import LabContext
from wirelab.lab.supervisor import LabThread

LOGGER = "wirelab.cache.service"


def _ask(address: tuple[str, int], command: bytes, *, timeout: float = 2.0) -> bytes:
    """Send one memcached text command; read until the reply's last line."""
    end = b"END\r\n" if command.startswith(b"get ") else b"\r\n"
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(command)
        reply = b""
        while not reply.endswith(end):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _answers(address: tuple[str, int]) -> bool:
    try:
        return _ask(address, b"version\r\n", timeout=0.5).startswith(b"VERSION ")
    except OSError:
        return False


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def _memcached_pid(port: int) -> int | None:
    """PID of our live memcached child listening on ``port`` (found as a user would)."""
    me = str(os.getpid())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[1] != me or fields[0] == "Z" or not args[0].endswith(b"memcached"):
            continue
        if b"-p" in args and args[args.index(b"-p") + 1] == str(port).encode():
            return int(proc.name)
    return None


def _reaped(pid: int) -> bool:
    """True once our dead child ``pid`` was waited for: no /proc entry (no zombie) left.

    Read from /proc only: probing with os.waitpid would reap a zombie itself and hide the bug.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[1] != str(os.getpid())  # the PID was reused by another process


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def _kill(port: int) -> int:
    pid = _memcached_pid(port)
    assert pid is not None, f"no memcached child on port {port}"
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_node_is_reaped_logged_once_and_restarted_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    lab = LabContext(state_dir=tmp_path, ephemeral=True, options={"memcached": 2})
    with LabThread([CacheService()], lab) as state:
        first, second = ((n.host, n.port) for n in lab_nodes(state))
        for address in (first, second):
            assert _ask(address, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        survivor = _memcached_pid(first[1])

        victim = _kill(second[1])
        _wait_for("the warning", lambda: bool(_records(caplog, logging.WARNING)), 5.0)
        _wait_for("the dead child to be reaped", lambda: _reaped(victim), 5.0)
        _wait_for("memcached to answer again on its port", lambda: _answers(second), 10.0)
        _wait_for("the 'back' line", lambda: bool(_records(caplog, logging.INFO)), 5.0)

        back = _memcached_pid(second[1])
        assert back is not None and back != victim
        assert _ask(second, b"get k\r\n") == b"END\r\n"  # it came back empty
        assert _ask(first, b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"  # untouched
        assert _memcached_pid(first[1]) == survivor
        time.sleep(1.2)  # two more polls: the restarted node is not reported again

    warnings = _records(caplog, logging.WARNING)
    assert warnings == [
        f"memcached node cache.memcached2 ({second[0]}:{second[1]}) died (pid {victim}, "
        "killed by SIGKILL); restarting it on the same port in 0.5 s, empty"
    ]
    assert any(
        m.startswith(f"memcached node cache.memcached2 is back on {second[0]}:{second[1]} ")
        and "empty" in m
        for m in _records(caplog, logging.INFO)
    )
    assert not _records(caplog, logging.ERROR)
    assert not _answers(second)  # stopped with the lab (the leak check agrees)


def test_a_node_that_keeps_dying_is_given_up_with_one_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    service = CacheService(poll_interval=0.1, max_restarts=1, backoff=0.1)
    lab = LabContext(state_dir=tmp_path, ephemeral=True, options={"memcached": 2})
    runner = LabThread([service], lab)
    with runner as state:
        first, second = ((n.host, n.port) for n in lab_nodes(state))
        _kill(second[1])
        _wait_for("the first restart", lambda: bool(_records(caplog, logging.INFO)), 10.0)
        _wait_for("memcached to answer again", lambda: _answers(second), 5.0)

        victim = _kill(second[1])
        _wait_for("the error line", lambda: bool(_records(caplog, logging.ERROR)), 5.0)
        _wait_for("the dead child to be reaped", lambda: _reaped(victim), 5.0)
        time.sleep(0.5)  # several polls and more than the backoff: no restart comes
        assert not _answers(second)
        assert _memcached_pid(second[1]) is None
        assert _answers(first)  # the other node keeps serving
        # The lab's state no longer lists the node it gave up on.
        assert [(n.host, n.port) for n in lab_nodes(runner.state)] == [first]

    assert len(_records(caplog, logging.WARNING)) == 1
    assert _records(caplog, logging.ERROR) == [
        f"memcached node cache.memcached2 ({second[0]}:{second[1]}) died (pid {victim}, "
        "killed by SIGKILL); giving up after 1 restart within 60 s: it stays down until "
        "the lab is restarted"
    ]


def test_the_lab_stops_cleanly_while_a_restart_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    lab = LabContext(state_dir=tmp_path, ephemeral=True, options={"memcached": 2})
    runner = LabThread([CacheService(poll_interval=0.1, backoff=30.0, max_backoff=30.0)], lab)
    with runner as state:
        port = lab_nodes(state)[0].port
        victim = _kill(port)
        _wait_for("the warning", lambda: bool(_records(caplog, logging.WARNING)), 5.0)
        began = time.monotonic()
    assert time.monotonic() - began < 5.0  # the pending restart does not hold the lab up
    assert _reaped(victim)
    assert _memcached_pid(port) is None
    assert not any("is back" in m for m in _records(caplog, logging.INFO))


def test_restart_backoff_doubles_up_to_a_bound() -> None:
    service = CacheService(backoff=0.5, max_backoff=5.0)
    assert [service.restart_delay(n) for n in range(7)] == [0.5, 1, 2, 4, 5, 5, 5]
    with pytest.raises(ConfigError):
        CacheService(poll_interval=0)
