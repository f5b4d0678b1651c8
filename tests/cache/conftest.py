"""Real memcached daemons for the cache tests (free loopback ports, stopped after use)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from wirelab.cache.daemon import MemcachedDaemon
from wirelab.errors import ServiceUnavailable


def _daemon() -> MemcachedDaemon:
    """A daemon; without memcached the test skips, or fails under WIRELAB_REQUIRE_SERVICES=1.

    ``make test`` sets WIRELAB_REQUIRE_SERVICES=1 (and installs memcached with
    scripts/install-system-deps.sh): there a missing daemon is a failure, never a skip that
    would hide every cache test.
    """
    try:
        return MemcachedDaemon(port=0)
    except ServiceUnavailable as exc:  # pragma: no cover - `make` installs memcached
        if os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0"):
            pytest.fail(f"WIRELAB_REQUIRE_SERVICES is set and {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def memcached() -> Iterator[MemcachedDaemon]:
    """One memcached daemon for the module."""
    with _daemon() as daemon:
        yield daemon


@pytest.fixture
def three_daemons() -> Iterator[list[MemcachedDaemon]]:
    """Three fresh memcached daemons (a test may kill some)."""
    daemons = [_daemon() for _ in range(3)]
    try:
        for daemon in daemons:
            daemon.start()
        yield daemons
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.stop()
