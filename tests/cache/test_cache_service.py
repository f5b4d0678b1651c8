"""The lab's cache service: N memcached daemons, reported, and stopped with the lab."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wirelab.cache.service import CacheService, lab_nodes
from wirelab.errors import ConfigError
from wirelab.lab.service import LabContext
from wirelab.lab.state import state_path
from wirelab.lab.supervisor import LabThread
from wirelab.testing import cli_env


def _version(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(b"version\r\n")
        return sock.recv(100)


def test_three_nodes_start_report_and_stop(tmp_path: Path) -> None:
    lab = LabContext(state_dir=tmp_path, ephemeral=True, options={"memcached": 3})
    with LabThread([CacheService()], lab) as state:
        names = [ep.name for ep in state.endpoints]
        assert names == ["cache.memcached", "cache.memcached2", "cache.memcached3"]
        assert {ep.host for ep in state.endpoints} == {"cache.example.com"}
        nodes = lab_nodes(state)
        assert len({n.port for n in nodes}) == 3
        for node in nodes:
            assert _version((node.host, node.port)).startswith(b"VERSION ")
        assert (tmp_path / "logs" / "memcached3.log").exists()
    for node in nodes:  # the leak check also fails the test if a daemon outlived the lab
        with pytest.raises(ConnectionRefusedError):
            _version((node.host, node.port))


def test_missing_memcached_is_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRELAB_MEMCACHED", "/nonexistent/memcached")
    lab = LabContext(state_dir=tmp_path, ephemeral=True)
    from wirelab.queue.service import QueueService

    with LabThread([CacheService(), QueueService()], lab, state_file=state_path(tmp_path)) as st:
        reason = st.unavailable["cache"]
        assert reason.startswith("memcached is not installed")
        assert "apt-get install memcached" in reason and "\n" not in reason
        with pytest.raises(ConfigError, match="unavailable: memcached is not installed"):
            lab_nodes(st)
        done = subprocess.run(
            [sys.executable, "-m", "wirelab", "cache", "squares"],
            env=cli_env(st),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "wirelab: error: lab service 'cache' is unavailable: memcached is not installed "
        "(install it with: apt-get install memcached); "
        "WIRELAB_MEMCACHED=/nonexistent/memcached is not a program"
    ]
