"""Project-wide test set-up: a leak check around every test (threads, children, sockets),
one ``raw_server`` fixture (an independent peer on plain sockets) and one ``run_wirelab``
helper for driving the CLI as a user does (``from tests.conftest import run_wirelab``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: Test directories whose tests share a machine-wide resource, so that under pytest-xdist
#: (``make test`` runs ``-n auto --dist loadgroup``) each runs on one worker only: the
#: playground builds network namespaces and checks that nothing of its own is left; the hostile
#: suite floods a lab and times normal clients, so two copies must not flood at once.
_SERIAL_GROUPS = ("playground", "hostile")

#: What serves one connection of a ``raw_server``.
Behaviour = Callable[[socket.socket], None]


def run_wirelab(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``wirelab ARGS...`` in a child process, as a user would, and capture its output.

    Args:
        args: the command line after ``wirelab`` (``"udp", "client", "--json"``).
        env: the environment (usually the ``wirelab_env`` fixture, which points at a lab).
        input: text for its standard input.
        timeout: seconds before the test gives up on it.
    """
    return subprocess.run(
        [sys.executable, "-m", "wirelab", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _serve_one(conn: socket.socket, behaviour: Behaviour) -> None:
    """Serve one accepted connection (10 s per socket call), then close it."""
    with conn:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            behaviour(conn)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], tuple[str, int]]]:
    """Start a one-connection server written with plain sockets; ``behaviour(conn)`` serves it.

    Returns ``(host, port)``. The thread and sockets are closed when the test ends.
    """
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(behaviour: Behaviour) -> tuple[str, int]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            _serve_one(conn, behaviour)

        thread = threading.Thread(target=serve, name="raw-server")
        thread.start()
        threads.append(thread)
        return listener.getsockname()[:2]

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(15)


@contextlib.contextmanager
def accept_loop(behaviour: Behaviour) -> Iterator[tuple[str, int]]:
    """A plain-socket server on 127.0.0.1 for any number of connections, one after another.

    ``behaviour(conn)`` serves each (its ``OSError`` is ignored; it need not close ``conn``).
    Yields ``(host, port)``; the thread and the listener are gone when the block ends.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            _serve_one(conn, behaviour)

    thread = threading.Thread(target=serve, name="accept-loop")
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        thread.join(15)
        listener.close()


#: Threads that belong to the session (the lab) or to libraries, not to one test. Idle
#: executor workers (``asyncio.to_thread``'s, a ``ThreadPoolExecutor``'s) may outlive the
#: test that started them; a *busy* one is work the test left running (:func:`_busy_workers`).
_SESSION_THREADS = ("wirelab-lab", "asyncio_", "ThreadPoolExecutor", "Dummy-")

#: Threads of ``concurrent.futures`` executors (``asyncio.to_thread`` runs in ``asyncio_N``).
_WORKER_THREADS = ("asyncio_", "ThreadPoolExecutor")


def _running_work(thread: threading.Thread) -> str | None:
    """What an executor worker thread is running now (``module.function``), or None if idle.

    A worker is busy while ``concurrent.futures.thread._WorkItem.run`` is on its stack; the
    frame it called is the work (``asyncio.to_thread(time.sleep, ...)`` shows ``sleep``'s
    caller, or the function itself for Python code).
    """
    frame = sys._current_frames().get(thread.ident or -1)
    work = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "run" and code.co_filename.endswith("concurrent/futures/thread.py"):
            return work or "?"
        work = f"{frame.f_globals.get('__name__', '?')}.{code.co_name}"
        frame = frame.f_back
    return None


def _busy_workers() -> dict[threading.Thread, str]:
    """Executor worker threads that are running work right now, with what they run."""
    found = {}
    for thread in threading.enumerate():
        if thread.name.startswith(_WORKER_THREADS):
            work = _running_work(thread)
            if work is not None:
                found[thread] = work
    return found


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
    """Fail a test that leaves a thread, a child process, a socket or executor work behind it.

    Executor work (``asyncio.to_thread``, ``run_in_executor``) counts when a worker that was
    idle or absent before the test is still running something after it.
    """
    threads_before = set(threading.enumerate())
    busy_before = set(_busy_workers())
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
        new_work = {t: w for t, w in _busy_workers().items() if t not in busy_before}
        if (
            not (new_threads or new_children or new_sockets or new_work)
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.02)
    assert not new_threads, f"test leaked threads: {[t.name for t in new_threads]}"
    assert not new_children, f"test leaked child processes: {sorted(new_children)}"
    assert not new_sockets, f"test leaked sockets: {sorted(new_sockets)}"
    assert not new_work, f"test left executor work running: {sorted(new_work.values())}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadgroup``, schedule by :data:`_SERIAL_GROUPS` and by module (the
    marker below no longer reaches xdist under pytest 9: see ``tests/scheduling.py``)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.scheduling import GroupScheduling

    return GroupScheduling(config, log, serial=_SERIAL_GROUPS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each of :data:`_SERIAL_GROUPS`' tests in one xdist group (one worker runs it)."""
    for item in items:
        parts = item.nodeid.split("/")
        if len(parts) > 2 and parts[0] == "tests" and parts[1] in _SERIAL_GROUPS:
            item.add_marker(pytest.mark.xdist_group(parts[1]))
