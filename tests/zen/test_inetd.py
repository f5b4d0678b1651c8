"""Our inetd super-server: a process per connection (nowait), a process that takes over the
listener until idle (wait), and the ``python -m wirelab.zen.inetd`` entry point."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from wirelab.net.addresses import listen_tcp
from wirelab.zen._core import ZenConfig
from wirelab.zen.client import ZenClient, ask
from wirelab.zen.inetd import InetdServer

Q = b"Simple is better than?"


@contextmanager
def running(mode: str, **options: float) -> Iterator[InetdServer]:
    server = InetdServer(listen_tcp("127.0.0.1", 0), mode, ZenConfig(idle_timeout=5.0), **options)
    thread = threading.Thread(target=server.run, name="zen-inetd-test")
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(15.0)


def test_nowait_starts_one_process_per_connection() -> None:
    with running("nowait") as server:
        address = server.listener.getsockname()[:2]
        with ZenClient(*address) as first, ZenClient(*address) as second:
            assert first.ask([Q])[0].answer == "Complex."
            assert second.ask([Q])[0].answer == "Complex."
            assert server.started == 2
            assert len({child.pid for child in server.children}) == 2


def test_wait_child_serves_until_idle_then_a_new_one_takes_over() -> None:
    with running("wait", wait_idle=0.3) as server:
        address = server.listener.getsockname()[:2]
        assert [a.answer for a in ask(*address, [Q, Q])] == ["Complex.", "Complex."]
        assert server.started == 1
        with ZenClient(*address) as other:  # the same child serves a second client
            assert other.ask([Q])[0].answer == "Complex."
        assert server.started == 1
        deadline = time.monotonic() + 10.0
        while server.children and time.monotonic() < deadline:  # the child leaves when idle
            time.sleep(0.05)
        assert not server.children
        assert ask(*address, [Q])[0].answer == "Complex."
        assert server.started == 2


def test_a_child_that_cannot_start_drops_one_connection_not_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for mode in ("nowait", "wait"):
        with running(mode) as server:
            address = server.listener.getsockname()[:2]
            command = server._command
            server._command = lambda: ["/nonexistent/wirelab-child"]  # type: ignore[method-assign]
            with socket.create_connection(address, timeout=5) as doomed:
                doomed.settimeout(5)
                if mode == "nowait":  # the connection was dropped: EOF
                    assert doomed.recv(100) == b""
                else:  # nobody took the listener; this client waits in the backlog
                    time.sleep(0.3)
            server._command = command  # type: ignore[method-assign]
            assert ask(*address, [Q])[0].answer == "Complex."  # the next one is served
    failures = [r for r in caplog.records if "cannot start a" in r.getMessage()]
    assert failures and all("nonexistent" in r.getMessage() for r in failures)


def test_module_entry_point_runs_a_super_server(tmp_path: object) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab.zen.inetd", "nowait", "127.0.0.1", "-p", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        found = re.search(r"listening at 127\.0\.0\.1:(\d+)", proc.stderr.readline())
        assert found
        answers = ask("127.0.0.1", int(found.group(1)))
        assert len(answers) == 3
    finally:
        proc.terminate()
        proc.wait(15.0)
        if proc.stderr is not None:
            proc.stderr.close()
