"""Issue 10 section 4: with WIRELAB_REQUIRE_SERVICES=1 (as `make test` sets) a missing
memcached fails the cache tests instead of skipping them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_one_cache_test(require: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, WIRELAB_MEMCACHED="/nonexistent/memcached")
    env["WIRELAB_REQUIRE_SERVICES"] = require
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "tests/cache/test_cache_cluster.py::test_values_land_where_the_ring_says",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("require", "outcome"), [("1", "error"), ("", "skipped")])
def test_a_missing_memcached_fails_only_when_services_are_required(
    require: str, outcome: str
) -> None:
    done = _run_one_cache_test(require)
    summary = done.stdout.strip().splitlines()[-1]
    assert outcome in summary, done.stdout[-2000:]
    if outcome == "error":  # pytest.fail in a fixture: the test errors, the run fails
        assert done.returncode == 1 and "WIRELAB_REQUIRE_SERVICES is set" in done.stdout
    else:
        assert done.returncode == 0 and "error" not in summary and "failed" not in summary
