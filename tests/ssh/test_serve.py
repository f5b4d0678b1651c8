"""``wirelab ssh serve`` and ``wirelab telnet serve``: run until SIGTERM, serve real clients."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from wirelab.ssh.client import SSHTarget, connect, run_commands
from wirelab.telnet.client import login


def _serve(topic: str, home: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", topic, "serve", "-p", "0"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for _ in range(5):
        line = proc.stderr.readline()
        found = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    proc.wait()
    raise AssertionError(f"{topic} serve did not announce its port")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err


def test_ssh_serve_runs_the_lab_server_until_sigterm(tmp_path: Path) -> None:
    proc, port = _serve("ssh", tmp_path)
    try:
        target = SSHTarget(
            "127.0.0.1", port, "brandon", None, (tmp_path / "ssh" / "keys" / "brandon",),
            tmp_path / "ssh" / "known_hosts", 10,
        )  # fmt: skip

        async def go() -> str:
            async with connect(target) as conn:
                return (await run_commands(conn, ["show served"]))[0].stdout

        assert asyncio.run(go()) == "Arguments: ['served']\n"
    finally:
        err = _stop(proc)
    assert "stopped" in err


def test_telnet_serve_runs_the_lab_server_until_sigterm(tmp_path: Path) -> None:
    proc, port = _serve("telnet", tmp_path)
    try:
        result = asyncio.run(login("127.0.0.1", port, "brandon", "abc123", command="whoami"))
        assert result.output == "brandon\n"
    finally:
        err = _stop(proc)
    assert "stopped" in err
