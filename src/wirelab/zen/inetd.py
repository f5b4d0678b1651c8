"""inetd-style Zen services (chapter 7, over TCP; the book's F39 and F40) and our super-server.

A super-server holds the listening socket and starts a program only when a client comes:

* ``nowait`` (F39): for every connection, the super-server accepts and starts a child with
  the *connected* socket as its standard input (fd 0); the child answers that one client and
  exits. A process per connection: simple and isolated, and slow to start.
* ``wait`` (F40): when the listener becomes readable, the super-server starts one child with
  the *listening* socket as fd 0 and stops watching it; the child accepts and serves clients
  itself until nobody has been connected for ``wait_idle`` seconds, then exits, and the
  super-server watches the listener again.

The children are ``python -m wirelab.zen.inetd nowait-child|wait-child``; they also work under
a real inetd or systemd socket activation (``Accept=yes`` / ``Accept=no``). That command line,
the children's code and the super-server run by hand are :mod:`wirelab.zen._inetd_command`'s;
this module owns the super-server itself (:class:`InetdServer`) and its lab starters. Children
log to their standard error, which the super-server points at ``log_path`` when given (the
book's ``/tmp/zen.log``).

A process per connection costs a whole interpreter per client, so ``nowait`` is bounded
(:mod:`wirelab.zen.inetd_limits` says how, and why each bound is what it is, and keeps the
start and eviction rates).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import selectors
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from wirelab.errors import ConfigError
from wirelab.zen._common import RESOURCE_ERRNOS, RunningServer, _RateLimit, accept_backoff_log
from wirelab.zen._core import ZenConfig
from wirelab.zen._inetd_command import DEFAULT_WAIT_IDLE, child_command, main
from wirelab.zen.inetd_limits import (
    CHILD_MEMORY,
    CHILDREN_MEMORY,
    DEFAULT_CHILD_IDLE,
    DEFAULT_CHILD_LIFETIME,
    DEFAULT_EVICTIONS_PER_SECOND,
    DEFAULT_MAX_CHILDREN,
    DEFAULT_MAX_PENDING,
    DEFAULT_PENDING_TIMEOUT,
    DEFAULT_PER_MINUTE,
    EvictionRate,
    NowaitLimits,
    StartRate,
    default_max_children,
)

__all__ = [
    "CHILDREN_MEMORY",
    "CHILD_MEMORY",
    "DEFAULT_CHILD_IDLE",
    "DEFAULT_CHILD_LIFETIME",
    "DEFAULT_EVICTIONS_PER_SECOND",
    "DEFAULT_MAX_CHILDREN",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_PENDING_TIMEOUT",
    "DEFAULT_PER_MINUTE",
    "DEFAULT_WAIT_IDLE",
    "MAX_LOG_BYTES",
    "InetdServer",
    "NowaitLimits",
    "default_max_children",
    "main",
    "start_inetd_nowait",
    "start_inetd_wait",
]

log = logging.getLogger("wirelab.zen.inetd")

#: Seconds after which a child that has not said it is ready counts as started anyway.
_START_GRACE = 5.0

#: The listen backlog: a burst of connections waits here while children start.
_BACKLOG = 1024

#: Connections accepted per wake-up before the loop looks at its children again.
_ACCEPT_BATCH = 1024

#: Bytes the children's log may reach before it is rotated (one ``.1`` file kept): 4 MiB.
MAX_LOG_BYTES = 4 << 20

#: Seconds a terminated child gets before it is killed.
_TERM_GRACE = 2.0

_POLL = 0.05


def _open_log(path: Path) -> IO[bytes]:
    """Open the children's log for appending, readable by its owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have been made with the umask's 0644
    return os.fdopen(fd, "ab")


def _gone(conn: socket.socket) -> bool:
    """True when the client has already closed or reset ``conn`` (no child is worth a start)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing sent yet
    except OSError:
        return True  # reset


class InetdServer:
    """A tiny super-server for one port: run :meth:`run` in a thread, :meth:`stop` to end.

    Args:
        listener: the listening socket (this server owns it from now on).
        mode: ``"nowait"`` (a child per connection) or ``"wait"`` (a child takes the listener).
        config: the Zen limits the children use.
        wait_idle: seconds a ``wait`` child keeps the listener with nobody connected.
        limits: the bounds on ``nowait`` children.
        log_path: a file the children log to (else they inherit our standard error).

    Raises:
        ConfigError: an unknown mode.
    """

    def __init__(
        self,
        listener: socket.socket,
        mode: str,
        config: ZenConfig,
        *,
        wait_idle: float = DEFAULT_WAIT_IDLE,
        limits: NowaitLimits | None = None,
        log_path: Path | None = None,
    ) -> None:
        from wirelab.net.server import OverloadLog

        if mode not in ("nowait", "wait"):
            raise ConfigError(f"mode must be 'nowait' or 'wait', not {mode!r}")
        self.listener = listener
        self.mode = mode
        self.limits = limits or NowaitLimits()
        self.max_children = self.limits.max_children or default_max_children()
        self.max_starting = self.limits.max_starting or max(2, os.cpu_count() or 2)
        if mode == "nowait":
            idle = min(config.idle_timeout, self.limits.child_idle)
            config = dataclasses.replace(config, idle_timeout=idle)
        self.config = config
        self.wait_idle = wait_idle
        self.children: list[subprocess.Popen[bytes]] = []
        #: Children started since the start.
        self.started = 0
        #: Connections closed without a child (the rate, the stack's bound, its timeout).
        self.refused = 0
        #: The most connections that waited for a slot at once.
        self.most_pending = 0
        #: The most children starting up at once.
        self.most_starting = 0
        #: Children terminated for their age since the start.
        self.terminated = 0
        #: Children ended to make room for a new client since the start.
        self.evicted = 0
        self._born: dict[int, float] = {}
        self._conns: dict[int, socket.socket] = {}  # a nowait child's connection, our copy
        #: Accepted connections waiting for a slot, oldest first (served from the right).
        self._pending: collections.deque[tuple[socket.socket, float]] = collections.deque()
        self._evictions = EvictionRate(self.limits.evictions_per_second, time.monotonic())
        self._evict_log = OverloadLog()
        self._terminating: dict[int, float] = {}
        #: Children still starting up: pid -> (the read end of their ready pipe, when started).
        self._starting: dict[int, tuple[int, float]] = {}
        self._rate = StartRate(self.limits.per_minute)
        self._overload = OverloadLog()
        self.log_path = log_path
        self._log: IO[bytes] | None = _open_log(log_path) if log_path else None
        self._spawn_errors = _RateLimit()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._watching = False
        listener.setblocking(False)
        with contextlib.suppress(OSError):
            listener.listen(_BACKLOG)  # a burst waits here, not in SYN retries, while we fork
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._watch(True)

    def _command(self) -> list[str]:
        return child_command(self.mode, self.config, self.wait_idle)

    def _watch(self, on: bool) -> None:
        if on and not self._watching:
            self._sel.register(self.listener, selectors.EVENT_READ, self.listener)
        elif not on and self._watching:
            self._sel.unregister(self.listener)
        self._watching = on

    def _rotate_log(self) -> None:
        """Past :data:`MAX_LOG_BYTES`, the children's log becomes ``NAME.1`` and starts anew."""
        if self._log is None or self.log_path is None:
            return
        try:
            if os.fstat(self._log.fileno()).st_size <= MAX_LOG_BYTES:
                return
            self._log.close()
            self._log = None
            os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
            self._log = _open_log(self.log_path)
        except OSError as exc:
            log.warning("cannot rotate %s: %s", self.log_path, exc.strerror or exc)

    def _spawn(self, stdin: socket.socket) -> bool:
        """Start a child on ``stdin``; False (logged, after a pause) when the OS refused."""
        self._rotate_log()
        command = self._command()
        ready_r = ready_w = -1
        try:
            if self.mode == "nowait":
                # The child closes its end once it can read its client: until then it counts
                # against max_starting (start-ups share the CPU; a few at a time finish sooner).
                ready_r, ready_w = os.pipe()
                command += ["--ready-fd", str(ready_w)]
            child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                command,
                stdin=stdin.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=self._log if self._log is not None else None,
                pass_fds=(ready_w,) if ready_w >= 0 else (),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (ready_r, ready_w):
                if fd >= 0:
                    os.close(fd)
            # Out of descriptors or processes: like a real inetd, drop this one and go on.
            if self._spawn_errors.ready():
                log.warning("cannot start a %s child (%s); dropping connections", self.mode, exc)
            time.sleep(_POLL)
            return False
        now = time.monotonic()
        if ready_w >= 0:
            os.close(ready_w)
            self._starting[child.pid] = (ready_r, now)
            self.most_starting = max(self.most_starting, len(self._starting))
            self._sel.register(ready_r, selectors.EVENT_READ, child.pid)
        self.children.append(child)
        self._born[child.pid] = now
        if self.mode == "nowait":
            self._conns[child.pid] = stdin
        self._rate.note(now)
        self.started += 1
        return True

    def _evict(self, now: float) -> bool:
        """End the oldest child, if the eviction rate allows.

        The oldest, not the idlest: a slow client can look busy by sending a byte now and then,
        but it cannot look young. A normal client asks and goes; a child that has run longest is
        the likeliest to be held by a client that will not let go. A child still starting up
        is never the victim: it has not read its client's question yet, and on a loaded
        machine the start-up of the newest client's child can outlast a few evictions, which
        would otherwise make it the oldest and end it before it answered.
        """
        candidates = [
            c
            for c in self.children
            if c.pid not in self._terminating and c.pid not in self._starting
        ]
        if not self._evictions.allows(now) or not candidates:
            return False
        self._evictions.take()
        victim = min(candidates, key=lambda child: self._born[child.pid])
        with contextlib.suppress(OSError):
            # The client sees end-of-file; the child is told to go now (SIGTERM's default
            # action: it may still be starting up and not reading yet) and killed after the
            # grace if it has not gone.
            self._conns[victim.pid].shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            victim.terminate()
        self._terminating[victim.pid] = now
        self.evicted += 1
        count = self._evict_log.event()
        if count is not None:
            log.warning(
                "inetd-nowait: %d children running, the cap; ending the oldest (%.1f s old) "
                "for the newest waiting client (%d ended since the last such line)",
                len(self.children),
                now - self._born[victim.pid],
                count,
            )
        return True

    def _admit(self, conn: socket.socket) -> None:
        """Put a new connection on top of the waiting stack (or close it: gone, over the rate,
        or no stack); the stack's oldest is closed when it overflows."""
        if _gone(conn):
            conn.close()
            return
        now = time.monotonic()
        free = self._free_slots()
        why = self._rate.too_fast(now, min(free, len(self._pending)))
        if why is not None:
            self._refuse(conn, why)
            return
        self._pending.append((conn, now))
        # Those with a free slot are started as soon as the accepts are done; beyond them, at
        # most max_pending wait.
        while len(self._pending) > free + self.limits.max_pending:
            oldest, _ = self._pending.popleft()
            why = f"{len(self.children)} children running, the cap"
            if self.limits.max_pending:
                why = f"{self.limits.max_pending} connections waiting for a child, the bound"
                why += " (the oldest closed first)"
            self._refuse(oldest, why)
        self.most_pending = max(self.most_pending, len(self._pending) - free)

    def _free_slots(self) -> int:
        return max(0, self.max_children - len(self.children))

    def _started(self, pid: int) -> None:
        """Child ``pid`` is ready (or gone, or past the grace): it no longer counts as starting."""
        entry = self._starting.pop(pid, None)
        if entry is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(entry[0])
            os.close(entry[0])

    def _start_pending(self) -> None:
        """Start children for the newest waiting connections while slots are free (accepting
        again after each start, so a newcomer goes on top); drop those waiting too long or gone;
        end the oldest children, within the eviction rate, for those still waiting."""
        while self._pending:
            now = time.monotonic()
            while self._pending and now - self._pending[0][1] > self.limits.pending_timeout:
                conn, _ = self._pending.popleft()
                self._refuse(conn, f"no slot for {self.limits.pending_timeout:g} s")
            if not self._pending or len(self.children) >= self.max_children:
                break
            if len(self._starting) >= self.max_starting:
                break  # the next start when one of these is ready (the newest still first)
            conn, _ = self._pending.pop()  # the newest
            if _gone(conn):
                conn.close()
                continue
            why = self._rate.too_fast(now)
            if why is not None:
                self._refuse(conn, why)
                continue
            conn.setblocking(True)
            if not self._spawn(conn):
                conn.close()
            self._accept_waiting()
        if self._pending:
            self._make_room()

    def _make_room(self) -> None:
        """End the oldest children, within the eviction rate, for the connections waiting
        (not counting slots already being freed)."""
        now = time.monotonic()
        if self._free_slots():
            return  # (only when every slot holds a child: a free one is taken as starts allow)
        wanted = len(self._pending) - len(self._terminating)
        if wanted <= 0 or not self._evictions.allows(now) or self._rate.too_fast(now) is not None:
            return
        # Only connections still there are worth a child's end.
        kept: collections.deque[tuple[socket.socket, float]] = collections.deque()
        for item in self._pending:
            if _gone(item[0]):
                item[0].close()
            else:
                kept.append(item)
        self._pending = kept
        wanted = len(self._pending) - len(self._terminating)
        while wanted > 0 and self._evict(now):
            wanted -= 1

    def _refuse(self, conn: socket.socket, why: str) -> None:
        """Close an over-the-bound connection at once; one warning line per burst."""
        self.refused += 1
        count = self._overload.event()
        if count is not None:
            log.warning(
                "inetd-nowait: %s; refusing connections (%d refused since the last such line)",
                why,
                count,
            )
        conn.close()

    def _on_readable(self) -> None:
        if self.mode == "wait":
            self._watch(False)  # the child owns the listener until it exits
            if not self._spawn(self.listener):
                self._watch(True)  # nobody took it: try again on the next connection
            return
        # Accept every waiting connection first (cheap), then start children for the newest
        # (slow), accepting again after each start: a burst is sorted out at once, and a
        # client that comes while we fork goes on top, not behind the burst in the backlog.
        self._reap()
        self._accept_waiting()
        self._start_pending()

    def _accept_waiting(self) -> None:
        """Accept what waits in the backlog and decide for each (see :meth:`_admit`)."""
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    accept_backoff_log(exc)
                    time.sleep(0.1)
                return
            self._admit(conn)

    def _reap(self) -> None:
        now = time.monotonic()
        alive = []
        for child in self.children:
            started = self._starting.get(child.pid)
            if started is not None and now - started[1] > _START_GRACE:
                self._started(child.pid)
            if child.poll() is not None:
                self._started(child.pid)
                self._born.pop(child.pid, None)
                self._terminating.pop(child.pid, None)
                conn = self._conns.pop(child.pid, None)
                if conn is not None:
                    conn.close()
                continue
            alive.append(child)
            if self.mode != "nowait":
                continue
            asked = self._terminating.get(child.pid)
            if asked is None and now - self._born[child.pid] > self.limits.child_lifetime:
                log.info(
                    "inetd-nowait: child %d is %g s old, the limit; terminating it",
                    child.pid,
                    self.limits.child_lifetime,
                )
                self._terminating[child.pid] = now
                self.terminated += 1
                child.terminate()
            elif asked is not None and now - asked > _TERM_GRACE:
                child.kill()
        if len(alive) != len(self.children):
            self.children = alive
            if self.mode == "wait":
                self._watch(not alive)
        if self._pending:
            self._start_pending()

    def run(self) -> None:
        """Watch the port and start children until :meth:`stop`."""
        try:
            while not self._stopping:
                for key, _ in self._sel.select(_POLL):
                    if key.data is None:
                        return
                    if isinstance(key.data, int):  # a child is ready: maybe start the next
                        self._started(key.data)
                        if self._pending:
                            self._start_pending()
                        continue
                    self._on_readable()
                self._reap()
        finally:
            for pid in list(self._starting):
                self._started(pid)
            self._sel.close()
            self.listener.close()
            for conn, _ in self._pending:
                conn.close()
            for child in self.children:
                if child.poll() is None:
                    child.terminate()
            for child in self.children:
                try:
                    child.wait(5.0)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(5.0)
            for conn in self._conns.values():
                conn.close()
            self._wake_r.close()
            self._wake_w.close()
            if self._log is not None:
                self._log.close()

    def stop(self) -> None:
        """Ask :meth:`run` to stop, terminating the children (thread-safe)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")


def _start(
    arch: str, listener: socket.socket, mode: str, config: ZenConfig, **options: object
) -> RunningServer:
    server = InetdServer(listener, mode, config, **options)  # type: ignore[arg-type]
    address = listener.getsockname()[:2]
    thread = threading.Thread(target=server.run, name=f"zen-{arch}", daemon=True)
    thread.start()

    def stop() -> None:
        server.stop()
        thread.join(15.0)

    return RunningServer(arch, address, stop)


def start_inetd_nowait(
    listener: socket.socket,
    config: ZenConfig,
    *,
    limits: NowaitLimits | None = None,
    log_path: Path | None = None,
) -> RunningServer:
    """Our super-server in ``nowait`` mode: a child process per connection, within ``limits``."""
    return _start("inetd-nowait", listener, "nowait", config, limits=limits, log_path=log_path)


def start_inetd_wait(
    listener: socket.socket,
    config: ZenConfig,
    *,
    wait_idle: float = DEFAULT_WAIT_IDLE,
    log_path: Path | None = None,
) -> RunningServer:
    """Our super-server in ``wait`` mode: a child takes the listener until it is idle."""
    return _start("inetd-wait", listener, "wait", config, wait_idle=wait_idle, log_path=log_path)


if __name__ == "__main__":
    main()
