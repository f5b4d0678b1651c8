"""The memcached child process: start, answer, stop by PID, die with its parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wirelab.cache.daemon import MemcachedDaemon, describe_exit, memcached_binary
from wirelab.errors import ConfigError, ServiceUnavailable


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _version(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(b"version\r\n")
        return sock.recv(100)


def test_starts_answers_and_stops_by_pid() -> None:
    daemon = MemcachedDaemon(port=0).start()
    try:
        pid = daemon.pid
        assert daemon.port > 0 and _alive(pid)
        assert _version(daemon.address).startswith(b"VERSION 1.")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"-U" in cmdline and cmdline[cmdline.index(b"-U") + 1] == b"0"  # no UDP
        assert cmdline[cmdline.index(b"-l") + 1] == b"127.0.0.1"
    finally:
        daemon.stop()
    assert not _alive(pid)
    with pytest.raises(ConnectionRefusedError):
        _version(daemon.address)
    daemon.stop()  # twice is fine


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        daemon = MemcachedDaemon(port=holder.getsockname()[1])
        with pytest.raises(ConfigError, match="address already in use"):
            daemon.start()
    assert daemon.process is None


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRELAB_MEMCACHED", "/nonexistent/memcached")
    with pytest.raises(ServiceUnavailable, match=r"apt-get install memcached"):
        memcached_binary()
    with pytest.raises(ServiceUnavailable):
        MemcachedDaemon()


def test_daemon_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the process that started memcached; memcached goes too."""
    script = textwrap.dedent(
        """
        import sys, time
        from wirelab.cache.daemon import MemcachedDaemon
        daemon = MemcachedDaemon(port=0).start()
        print(daemon.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child), "memcached outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_kill_reaps_the_process() -> None:
    daemon = MemcachedDaemon(port=0).start()
    pid = daemon.pid
    daemon.kill()
    assert not _alive(pid)
    assert os.waitpid is not None  # reaped by Popen.wait: no zombie left (leak check agrees)


def test_poll_reaps_a_dead_daemon_and_it_restarts_on_the_same_port() -> None:
    import asyncio

    daemon = MemcachedDaemon(port=0).start()
    try:
        pid, port = daemon.pid, daemon.port
        assert daemon.poll() is None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while (code := daemon.poll()) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert code == -signal.SIGKILL and describe_exit(code) == "killed by SIGKILL"
        assert not Path(f"/proc/{pid}").exists()  # reaped by poll(): no zombie
        asyncio.run(daemon.astart(same_port=True))
        assert daemon.port == port and daemon.pid != pid
        assert _version(daemon.address).startswith(b"VERSION ")
    finally:
        daemon.stop()
    with pytest.raises(ConfigError, match="not running"):
        daemon.poll()


def test_describe_exit() -> None:
    assert describe_exit(1) == "exited with status 1"
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(-signal.SIGTERM) == "killed by SIGTERM"
    assert describe_exit(-200) == "killed by signal 200"
