"""What every ``wirelab`` command does with bad input: one line on stderr, the right exit code."""

from __future__ import annotations

import os
import subprocess
import sys

from wirelab.cli import MAX_ERROR_CHARS, _one_line


def _run(*args: str | bytes, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "WIRELAB_DEBUG")}
    env["WIRELAB_HOME"] = "/nonexistent/wirelab-test"  # no lab: nothing to find
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "wirelab", *args],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        timeout=60,
        check=False,
    )


def test_an_argument_that_is_not_utf8_is_a_usage_error() -> None:
    done = _run("udp", "client", "-m", b"caf\xe9")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "wirelab: error: argument 4 is not valid UTF-8 text: b'caf\\xe9'"
    ]
    assert "Traceback" not in done.stderr


def test_a_long_error_stays_one_line_in_a_pipe() -> None:
    # No COLUMNS and no terminal: rich would wrap at 80 columns without soft wrapping.
    done = _run("tcp", "client", "no-such-host-with-a-long-name.invalid", "-p", "1060")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, lines
    assert lines[0].startswith("wirelab: error: name service failure")


def test_a_10kb_host_name_is_not_echoed_whole() -> None:
    done = _run("tcp", "client", "a" * 10_000, "-p", "1060")
    assert done.returncode == 2  # no host name is that long: a usage error
    assert "is not a host name or address" in done.stderr
    assert len(done.stderr) < 1000, len(done.stderr)


def test_a_long_runtime_error_is_shortened_in_its_middle() -> None:
    line = _one_line("no such host " + "a" * 10_000 + " (the end)")
    assert len(line) <= MAX_ERROR_CHARS
    assert line.startswith("no such host aaa") and line.endswith("aaa (the end)")
    assert "characters ...]" in line
