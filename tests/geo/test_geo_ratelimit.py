"""The provider rate limit across processes: a file, ``flock`` and real clocks (offline)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wirelab.geo._cachedir import CACHE_ENV, user_cache_dir
from wirelab.geo.providers import RateLimiter, nominatim_provider, rate_file

#: How late a process may note the time after its turn began (it prints after wait returns).
SLACK = 0.02

_TAKE_TURNS = """
import json, sys, time
from pathlib import Path
from wirelab.geo.providers import RateLimiter
limiter = RateLimiter(float(sys.argv[2]), path=Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()  # start together
stamps = []
for _ in range(int(sys.argv[3])):
    limiter.wait()
    stamps.append(time.time())
print(json.dumps(stamps))
"""


def test_processes_sharing_the_file_take_turns(tmp_path: Path) -> None:
    """Like a shell loop of `wirelab geo search --provider nominatim`, but concurrent."""
    path, interval, calls = tmp_path / "ratelimit" / "nominatim.last", 0.3, 3
    argv = [sys.executable, "-c", _TAKE_TURNS, str(path), str(interval), str(calls)]
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    each = [json.loads(out) for out in outputs]
    stamps = sorted(s for own in each for s in own)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 2 * calls
    assert min(gaps) >= interval - SLACK, gaps
    # without the file each process would only space its own calls: both would be done
    # after (calls - 1) intervals; together they needed (2 * calls - 1)
    assert stamps[-1] - stamps[0] >= (2 * calls - 1) * interval - SLACK
    assert float(path.read_text()) == pytest.approx(stamps[-1], abs=SLACK)


def test_two_limiters_with_one_file_are_one_limit(tmp_path: Path) -> None:
    path = tmp_path / "shared.last"
    first, second = RateLimiter(0.25, path=path), RateLimiter(0.25, path=path)
    began = time.monotonic()
    assert first.wait() < 0.05  # no earlier call anywhere
    assert second.wait() >= 0.25 - SLACK  # another instance (a process) just called
    assert first.wait() >= 0.25 - SLACK
    assert time.monotonic() - began >= 0.5
    time.sleep(0.3)
    assert second.wait() < 0.05  # the interval has passed: no wait
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_damaged_or_future_time_waits_at_most_one_interval(tmp_path: Path) -> None:
    path = tmp_path / "nominatim.last"
    slept: list[float] = []
    now = [1_000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def limiter() -> RateLimiter:
        return RateLimiter(1.0, path=path, clock=lambda: now[0], sleep=sleep, wall=lambda: now[0])

    for damaged in (b"", b"not a time\n", b"nan\n", b"-inf", b"\xff\xfe"):
        path.write_bytes(damaged)
        assert limiter().wait() == 0.0
    assert slept == []
    path.write_text("5000000000.0\n")  # the clock was set back: years "in the future"
    assert limiter().wait() == 1.0
    assert slept == [1.0]
    assert float(path.read_text()) == now[0]
    now[0] += 0.4
    assert limiter().wait() == pytest.approx(0.6)  # a fresh instance, as a new process is


def test_in_process_limit_stays_when_the_file_cannot_be_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    limiter = RateLimiter(0.2, path=blocker / "ratelimit" / "nominatim.last")
    assert limiter.wait() < 0.05
    assert limiter.wait() >= 0.2 - SLACK
    assert "rate limit kept in this process only" in caplog.text


def test_nominatim_is_paced_through_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "override"))
    limiter = nominatim_provider().limiter
    assert limiter is not None and limiter.interval == 1.0
    assert limiter.path == tmp_path / "override" / "ratelimit" / "nominatim.last"
    assert rate_file("nominatim") == limiter.path
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "wirelab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "wirelab"
