"""Our inetd super-server: a process per connection (nowait), a process that takes over the
listener until idle (wait), and the ``python -m wirelab.zen.inetd`` entry point."""

from __future__ import annotations

import logging
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from wirelab.net.addresses import listen_tcp
from wirelab.zen._core import ZenConfig
from wirelab.zen.client import ZenClient, ask
from wirelab.zen.inetd import (
    CHILD_MEMORY,
    DEFAULT_MAX_CHILDREN,
    InetdServer,
    NowaitLimits,
    _gone,
    default_max_children,
)

Q = b"Simple is better than?"


@contextmanager
def running(mode: str, **options: Any) -> Iterator[InetdServer]:
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


def _nowait_children() -> dict[int, int]:
    """This process's ``nowait-child`` processes, pid -> resident bytes (read from /proc)."""
    me = str(os.getpid())
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] != me or fields[0] == "Z":
                continue
            if b"nowait-child" not in (stat.parent / "cmdline").read_bytes():
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError):
            continue
        rss = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")]
        found[int(stat.parent.name)] = int(rss[0]) * 1024 if rss else 0
    return found


class Sampler:
    """Count our ``nowait`` children and their total resident memory every 50 ms."""

    def __init__(self) -> None:
        self.most = 0
        self.most_rss = 0
        self.biggest_child = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inetd-sampler")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            children = _nowait_children()
            self.most = max(self.most, len(children))
            self.most_rss = max(self.most_rss, sum(children.values()))
            self.biggest_child = max(self.biggest_child, *children.values(), 0)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5.0)


#: Seconds a normal client may wait once a slot is free (issue 11: 2 s) ...
SERVED_WITHIN = 2.0


def _start_up_seconds() -> float:
    """... plus what one child's start-up costs right now (0.1 s idle, seconds under load).

    A process per connection pays a Python start for every client: on a shared machine under
    load that alone can pass 2 s, whatever the super-server does.
    """
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import wirelab.zen.inetd, wirelab.zen.blocking"],
        check=True,
        timeout=60,
    )
    return time.monotonic() - began


def _state(sock: socket.socket, wait: float) -> str:
    """``"closed"`` when the server closed ``sock`` (EOF or reset), ``"held"`` when it is open."""
    sock.settimeout(wait)
    try:
        data = sock.recv(100)
    except TimeoutError:
        return "held"
    except ConnectionResetError:
        return "closed"
    return "closed" if not data else f"answered {data!r}"


def test_slow_connections_cannot_spawn_past_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 11 item 4: 500 slow connections once started 256 children (5.9 GB, load 30)
    and normal clients got nothing. Now: 8 children at most, the rest refused at once (one
    log line), idle children exit, and a normal client is served as soon as a slot frees.
    Here no connection waits and no child is ended to make room (``max_pending=0``,
    evictions off): while all 8 are held, a new client is refused too; the next tests show
    the default, which keeps newcomers on a stack and ends the oldest child for them."""
    caplog.set_level(logging.WARNING, logger="wirelab.zen.inetd")
    limits = NowaitLimits(max_children=8, child_idle=2.0, evictions_per_second=0, max_pending=0)
    slow: list[socket.socket] = []
    with running("nowait", limits=limits) as server, Sampler() as sampler:
        address = server.listener.getsockname()[:2]
        try:
            for _ in range(40):
                sock = socket.create_connection(address, timeout=5)
                slow.append(sock)
                sock.sendall(b"Simple is")  # a question begun and never finished
            time.sleep(0.3)
            readable = set(select.select(slow, [], [], 0)[0])  # readable: EOF or reset
            states = [_state(sock, 0.1) if sock in readable else "held" for sock in slow]
            assert states.count("held") == 8 and states.count("closed") == 32, states
            deadline = time.monotonic() + 10.0  # children start a few at a time
            while server.started < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.started == 8 and server.refused == 32
            began = time.monotonic()
            with socket.create_connection(address, timeout=5) as normal:
                assert _state(normal, 2.0) == "closed"  # refused at once, not left waiting
            assert time.monotonic() - began < 1.0
            deadline = time.monotonic() + 2.0 + 10.0  # a start can take seconds under load
            while server.children and time.monotonic() < deadline:  # idle children exit
                time.sleep(0.05)
            assert not server.children, "idle children did not exit"
            allowed = SERVED_WITHIN + _start_up_seconds()
            began = time.monotonic()
            assert ask(*address, [Q])[0].answer == "Complex."
            assert time.monotonic() - began < allowed
        finally:
            for sock in slow:
                sock.close()
    assert sampler.most == 8, sampler.most
    assert 0 < sampler.most_rss < 8 * CHILD_MEMORY, sampler.most_rss
    # At the default cap, children like these stay under 1 GB all together.
    assert DEFAULT_MAX_CHILDREN * sampler.biggest_child < 1_000_000_000
    refusals = [r for r in caplog.records if "the cap; refusing connections" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]


def test_a_new_client_takes_the_slot_of_the_oldest_child(caplog: pytest.LogCaptureFixture) -> None:
    """With every child held by a slow client, a normal client is still served: the oldest
    child is ended for it (sending a byte now and then does not save it), and the cap is
    never exceeded."""
    caplog.set_level(logging.WARNING, logger="wirelab.zen.inetd")
    limits = NowaitLimits(max_children=8, child_idle=5.0, evictions_per_second=1.0)
    slow: list[socket.socket] = []
    with running("nowait", limits=limits) as server, Sampler() as sampler:
        address = server.listener.getsockname()[:2]
        try:
            for _ in range(8):  # every child taken, each by a client that has asked once
                sock = socket.create_connection(address, timeout=10)
                slow.append(sock)
                sock.sendall(Q)
                assert sock.recv(100) == b"Complex."
            oldest, others = slow[0], slow[1:]
            for _ in range(4):  # 1.2 s: the oldest looks busy, the others are silent
                oldest.sendall(b" ")
                time.sleep(0.3)
            allowed = SERVED_WITHIN + _start_up_seconds()
            began = time.monotonic()
            assert ask(*address, [Q])[0].answer == "Complex."
            assert time.monotonic() - began < allowed
            assert _state(oldest, 2.0) == "closed"  # the oldest made room
            assert all(_state(sock, 0.01) == "held" for sock in others)
            assert server.evicted == 1 and server.refused == 0
        finally:
            for sock in slow:
                sock.close()
    assert sampler.most == 8, sampler.most
    ended = [r for r in caplog.records if "ending the oldest" in r.getMessage()]
    assert len(ended) == 1, [r.getMessage() for r in ended]


def test_a_client_after_a_slowloris_burst_is_served_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hostile suite's slowloris on a small scale: 40 slow connections against 4 children.
    Newcomers that find every slot taken wait on a bounded stack (the oldest closed past 16),
    and the newest waiting one takes the next freed slot: a normal client that arrives after
    the burst is on top and is answered within 2 s plus one child start-up, while the oldest
    children are ended at most 4 a second, never past the cap."""
    caplog.set_level(logging.WARNING, logger="wirelab.zen.inetd")
    limits = NowaitLimits(max_children=4, child_idle=5.0, evictions_per_second=4.0, max_pending=16)
    slow: list[socket.socket] = []
    with running("nowait", limits=limits) as server, Sampler() as sampler:
        address = server.listener.getsockname()[:2]
        try:
            began_burst = time.monotonic()
            for _ in range(40):
                sock = socket.create_connection(address, timeout=5)
                slow.append(sock)
                sock.sendall(b"Simple is")  # a question begun and never finished
            time.sleep(0.4)  # the hostile probe's client comes 0.4 s into the burst
            allowed = SERVED_WITHIN + _start_up_seconds()
            began = time.monotonic()
            assert ask(*address, [Q])[0].answer == "Complex."
            took = time.monotonic() - began
            assert took < allowed, f"{took:.2f} s, allowed {allowed:.2f} s"
            # It went ahead of slow connections that came before it and still wait: adaptive
            # LIFO, not first come first served. Past the stack's 16, the oldest were closed.
            waiting = len(server._pending)
            assert waiting > 0, "nobody older was waiting: this proved nothing"
            readable = set(select.select(slow, [], [], 0)[0])
            assert len(readable) >= 40 - 4 - 16
            elapsed = time.monotonic() - began_burst
            assert 1 <= server.evicted <= 4 + 4.0 * elapsed + 1, (server.evicted, elapsed)
        finally:
            for sock in slow:
                sock.close()
    assert 0 < sampler.most <= 4, sampler.most
    assert server.most_pending == 16, server.most_pending
    assert 1 <= server.most_starting <= server.max_starting, server.most_starting
    assert server.started <= 4 + server.evicted + server.terminated + 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("waiting for a child, the bound" in line for line in lines) == 1, lines


def test_evictions_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """A burst of newcomers ends at most ``evictions_per_second`` children (no fork storm);
    beyond the waiting stack's bound the oldest waiting are closed at once, with one line for
    each kind of overload."""
    caplog.set_level(logging.WARNING, logger="wirelab.zen.inetd")
    limits = NowaitLimits(max_children=2, child_idle=5.0, evictions_per_second=1.0, max_pending=4)
    socks: list[socket.socket] = []
    with running("nowait", limits=limits) as server, Sampler() as sampler:
        address = server.listener.getsockname()[:2]
        try:
            for _ in range(2):
                sock = socket.create_connection(address, timeout=10)
                socks.append(sock)
                sock.sendall(Q)
                assert sock.recv(100) == b"Complex."
            for _ in range(20):
                sock = socket.create_connection(address, timeout=10)
                socks.append(sock)
                sock.sendall(b"Simple is")
            began = time.monotonic()
            deadline = began + 5.0
            while server.refused < 14 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            # The oldest past the stack's 4 were closed; the stack ends 1 child a second, and
            # the newest waiting connection takes the freed slot.
            newcomers = server.started - 2
            assert server.refused + len(server._pending) + newcomers == 20
            assert len(server._pending) <= 4 and server.refused >= 20 - 4 - 2, server.refused
            assert 1 <= server.evicted <= 2 + (time.monotonic() - began) * 1.0, server.evicted
            closed = [sock for sock in socks[2:] if _state(sock, 0.01) == "closed"]
            assert len(closed) >= server.refused
            assert all(_state(sock, 0.01) != "closed" for sock in socks[-3:])  # the newest
        finally:
            for sock in socks:
                sock.close()
    assert sampler.most <= 2
    assert server.most_pending == 4
    lines = [r.getMessage() for r in caplog.records]
    assert sum("ending the oldest" in line for line in lines) == 1
    assert sum("refusing connections" in line for line in lines) == 1


def test_a_trickling_client_loses_its_child_at_the_lifetime() -> None:
    limits = NowaitLimits(child_lifetime=1.0, child_idle=5.0)
    with running("nowait", limits=limits) as server:
        with socket.create_connection(server.listener.getsockname()[:2], timeout=5) as sock:
            began = time.monotonic()
            sock.settimeout(0.2)
            closed = False
            while not closed and time.monotonic() - began < 5.0:
                try:
                    sock.sendall(b"x")  # a byte now and then: never idle, never done
                    closed = sock.recv(100) == b""
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
            assert closed, "the child outlived its lifetime"
            assert 0.9 < time.monotonic() - began < 4.0
        assert server.terminated == 1


def test_spawns_per_minute_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.zen.inetd")
    with running("nowait", limits=NowaitLimits(per_minute=3)) as server:
        address = server.listener.getsockname()[:2]
        for _ in range(3):
            assert ask(*address, [Q])[0].answer == "Complex."
        with socket.create_connection(address, timeout=5) as fourth:
            assert _state(fourth, 2.0) == "closed"
        assert server.started == 3 and server.refused == 1
    assert any("the rate limit" in r.getMessage() for r in caplog.records)


def test_default_cap_fits_the_machine() -> None:
    assert 1 <= default_max_children() <= DEFAULT_MAX_CHILDREN
    assert DEFAULT_MAX_CHILDREN * CHILD_MEMORY < 1_000_000_000


def test_the_childrens_log_is_private_and_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 8: zen-inetd.log was 0644 (readable by other users) and grew forever."""
    monkeypatch.setattr("wirelab.zen.inetd.MAX_LOG_BYTES", 150)  # one child line is ~90
    path = tmp_path / "zen-inetd.log"
    path.write_bytes(b"x" * 200)  # an old log, made with the umask
    path.chmod(0o644)
    with running("nowait", log_path=path) as server:
        assert path.stat().st_mode & 0o777 == 0o600
        address = server.listener.getsockname()[:2]
        with socket.create_connection(address, timeout=5) as quiet:
            quiet.sendall(b"Simple is")  # the child logs why it closes this one
        assert ask(*address, [Q])[0].answer == "Complex."
        deadline = time.monotonic() + 10.0  # the first child may still be starting
        while b"in the middle of a question" not in path.read_bytes():
            assert time.monotonic() < deadline, "the child never logged"
            time.sleep(0.05)
    old = tmp_path / "zen-inetd.log.1"
    assert old.read_bytes() == b"x" * 200  # rotated at the first start past the limit
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"closed in the middle of a question" in path.read_bytes()


def test_a_connection_already_gone_is_worth_no_child() -> None:
    with listen_tcp("127.0.0.1", 0) as listener:
        address = listener.getsockname()[:2]
        with socket.create_connection(address, timeout=5) as open_one:
            conn, _ = listener.accept()
            with conn:
                assert not _gone(conn)  # connected, silent
                open_one.sendall(b"Simple is")
                assert not _gone(conn)  # a question begun
        closed = socket.create_connection(address, timeout=5)
        closed.close()
        conn, _ = listener.accept()
        with conn:
            time.sleep(0.05)
            assert _gone(conn)  # closed before we looked


def test_a_nowait_child_does_not_import_asyncio() -> None:
    """asyncio costs a nowait child ~7 MB (23 MB instead of 16), times 32 children."""
    code = "import sys, wirelab.zen.inetd, wirelab.zen.blocking; print('asyncio' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
