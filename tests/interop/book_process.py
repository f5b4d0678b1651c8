"""Running the book-like peers of chapters 2, 3 and 5 as child processes, as a reader runs
the book's scripts: ``python book_udp.py udp_remote.py server 127.0.0.1 -p 0``.

:func:`book_server` starts a server peer, reads its ``Listening at (HOST, PORT)`` line for
the port, and stops it afterwards; :func:`book_client` runs a client peer to completion.
Both point the peer's transcript (``book_wire``) at a file of the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
_LISTENING = re.compile(r"Listening.*?, (\d+)\)")


def _command(script: str, program: str, args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-u", str(HERE / script), program, *args]


def _env(transcript: Path | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOK_")}
    if transcript is not None:  # None: no transcript (a peer sending millions of chunks)
        env["BOOK_TRANSCRIPT"] = str(transcript)
    env.update(extra or {})
    return env


@dataclass
class RunningPeer:
    """A server peer: its process, port, and (once stopped) what it printed."""

    process: subprocess.Popen[str]
    port: int
    stdout: str = ""
    stderr: str = ""
    collected: bool = False

    def wait(self, timeout: float = 10) -> int:
        """Wait for a peer that exits by itself (the one-connection servers of chapter 5)."""
        if not self.collected:
            out, err = self.process.communicate(timeout=timeout)
            self.stdout += out
            self.stderr += err
            self.collected = True
        return self.process.returncode


@contextmanager
def book_server(
    script: str,
    program: str,
    *args: str,
    transcript: Path,
    env: dict[str, str] | None = None,
) -> Iterator[RunningPeer]:
    """Start a server peer and yield it once it listens; stop it (SIGTERM) afterwards."""
    process = subprocess.Popen(
        _command(script, program, args),
        env=_env(transcript, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peer = RunningPeer(process, 0)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = _LISTENING.search(first)
        if match is None:
            process.kill()
            out, err = process.communicate(timeout=10)
            raise AssertionError(f"the peer did not start: {first!r} {out!r} {err!r}")
        peer.port = int(match.group(1))
        peer.stdout = first
        yield peer
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            peer.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            peer.wait(10)


def book_client(
    script: str,
    program: str,
    *args: str,
    transcript: Path | None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run a client peer to completion (the test fails if it takes over ``timeout`` s)."""
    return subprocess.run(
        _command(script, program, args),
        env=_env(transcript, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
