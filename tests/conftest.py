"""Project-wide test set-up: a leak check around every test (threads, children, sockets)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Threads that belong to the session (the lab) or to libraries, not to one test.
_SESSION_THREADS = ("wirelab-lab", "asyncio_", "ThreadPoolExecutor", "Dummy-")


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _sockets() -> set[str]:
    """This process's open sockets, as ``fd -> socket:[inode]`` pairs."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{fd.name}->{target}")
    return found


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread, a child process or a socket open behind it."""
    threads_before = set(threading.enumerate())
    children_before = _children()
    sockets_before = _sockets()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        new_threads = [
            t
            for t in threading.enumerate()
            if t not in threads_before and t.is_alive() and not t.name.startswith(_SESSION_THREADS)
        ]
        new_children = _children() - children_before
        new_sockets = _sockets() - sockets_before
        if not (new_threads or new_children or new_sockets) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not new_threads, f"test leaked threads: {[t.name for t in new_threads]}"
    assert not new_children, f"test leaked child processes: {sorted(new_children)}"
    assert not new_sockets, f"test leaked sockets: {sorted(new_sockets)}"
