"""A ``serve`` command stopped by SIGTERM the moment it says it listens stops cleanly.

Supervisors (the lab, the rpc worker pool, systemd) send SIGTERM as soon as they read the
listening line; the handler must already be in place by then, or the process dies of the
signal's default action (exit -15) instead of closing its listener and exiting 0.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_right_after_the_listening_line_is_a_clean_stop(attempt: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "tcp", "serve", "127.0.0.1", "-p", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        seen = b""
        deadline = time.monotonic() + 30
        while b"listening at" not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"listening at" in seen, seen
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == 0, (proc.returncode, seen + rest)
    assert b"stopped" in rest
