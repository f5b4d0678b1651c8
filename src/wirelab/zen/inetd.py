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
a real inetd or systemd socket activation (``Accept=yes`` / ``Accept=no``). Children log to
their standard error, which the super-server points at ``log_path`` when given (the book's
``/tmp/zen.log``).

A process per connection costs a whole interpreter per client: about 16 MB resident each
(Python 3.11; this module imports asyncio only in the ``wait`` child to keep it so). Unbounded,
500 slow clients once started 256 children, 5.9 GB and a load average of 30. So ``nowait``
is bounded the way inetd's ``nowait.N`` and xinetd's ``instances``/``cps`` bound a service
(:class:`NowaitLimits`):

* at most ``max_children`` children at once: :func:`default_max_children`, 32 (32 x 24 MB,
  our per-child budget, stays under 1 GB), fewer on a machine with less memory free;
* at most ``per_minute`` children started in any 60 seconds (a fork storm costs CPU: a
  Python start is ~40 ms of it);
* when every child is taken, a new client still gets one: the oldest child is ended (its
  connection shut down, the child terminated) and the new client takes the slot as soon as
  that child has exited, so the cap is never exceeded. The oldest, because a normal client
  asks and goes, while a slow client that holds a slot can look busy but not young. At most
  ``evictions_per_second`` children are ended this way, so a flood cannot become a fork storm;
* beyond that (or the rate), a connection is accepted and closed at once, with one warning
  line per burst (not one per connection), so clients learn at once instead of waiting in
  the backlog;
* each child closes its client after ``child_idle`` seconds without progress, and the
  super-server terminates any child older than ``child_lifetime``, so a client that trickles
  a byte now and then cannot keep a slot forever.

No slot is reserved (on loopback a normal client and a hostile one look alike); a new
client is served within a child's start-up time by ending the oldest child, as long as the
eviction rate allows, else as soon as a child exits.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from wirelab.errors import ConfigError
from wirelab.zen._common import RESOURCE_ERRNOS, RunningServer, _RateLimit, accept_backoff_log
from wirelab.zen._core import ZenConfig

__all__ = [
    "CHILDREN_MEMORY",
    "CHILD_MEMORY",
    "DEFAULT_CHILD_IDLE",
    "DEFAULT_CHILD_LIFETIME",
    "DEFAULT_EVICTIONS_PER_SECOND",
    "DEFAULT_MAX_CHILDREN",
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

#: Seconds a ``wait`` child keeps the listener with nobody connected (the book's 8).
DEFAULT_WAIT_IDLE = 8.0

#: Resident memory we budget per ``nowait`` child: ~16 MB measured (Python 3.11, x86-64),
#: plus room for a bigger interpreter or a busy client's buffers.
CHILD_MEMORY = 24 << 20

#: Resident memory all ``nowait`` children of one super-server may use together: under 1 GB,
#: with room left for the super-server and the rest of the lab.
CHILDREN_MEMORY = 768 << 20

#: Children a ``nowait`` super-server runs at once, at most (768 MB / 24 MB = 32).
DEFAULT_MAX_CHILDREN = CHILDREN_MEMORY // CHILD_MEMORY

#: Children started in any 60 seconds, at most (openbsd-inetd's ``nowait.N`` default).
DEFAULT_PER_MINUTE = 256

#: Seconds a ``nowait`` child waits for a client that makes no progress.
DEFAULT_CHILD_IDLE = 10.0

#: Seconds a ``nowait`` child may live, however its client behaves.
DEFAULT_CHILD_LIFETIME = 60.0

#: Children ended per second (at most, in a burst of as many) to make room for new clients.
DEFAULT_EVICTIONS_PER_SECOND = 4.0

#: Seconds a client waits for the slot of an ended child before it is closed after all.
_PENDING_TIMEOUT = 2.0

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


def _available_memory() -> int | None:
    """Bytes of memory the machine can still give (Linux ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def default_max_children() -> int:
    """:data:`DEFAULT_MAX_CHILDREN`, or fewer: a quarter of the free memory in children."""
    available = _available_memory()
    if available is None:
        return DEFAULT_MAX_CHILDREN
    return max(1, min(DEFAULT_MAX_CHILDREN, available // 4 // CHILD_MEMORY))


@dataclass(frozen=True)
class NowaitLimits:
    """How many ``nowait`` children run, how fast they start, and how long they live.

    Attributes:
        max_children: children at once (inetd's ``nowait.N``, xinetd's ``instances``);
            ``None`` for :func:`default_max_children`.
        per_minute: children started in any 60 seconds (xinetd's ``cps``, per minute).
        child_idle: seconds a child keeps a client that makes no progress.
        child_lifetime: seconds after which the super-server terminates a child.
        evictions_per_second: children ended per second, when all are taken, to make room
            for a new client (the oldest first); 0 refuses new clients instead.
    """

    max_children: int | None = None
    per_minute: int = DEFAULT_PER_MINUTE
    child_idle: float = DEFAULT_CHILD_IDLE
    child_lifetime: float = DEFAULT_CHILD_LIFETIME
    evictions_per_second: float = DEFAULT_EVICTIONS_PER_SECOND

    def __post_init__(self) -> None:
        if self.max_children is not None and self.max_children < 1:
            raise ConfigError(f"max_children must be at least 1, not {self.max_children}")
        if self.per_minute < 1:
            raise ConfigError(f"per_minute must be at least 1, not {self.per_minute}")
        if not 0 < self.child_idle < float("inf") or not 0 < self.child_lifetime < float("inf"):
            raise ConfigError("child_idle and child_lifetime must be finite and above zero")
        if not 0 <= self.evictions_per_second < float("inf"):
            raise ConfigError("evictions_per_second must be finite and not below zero")


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
        if mode == "nowait":
            idle = min(config.idle_timeout, self.limits.child_idle)
            config = dataclasses.replace(config, idle_timeout=idle)
        self.config = config
        self.wait_idle = wait_idle
        self.children: list[subprocess.Popen[bytes]] = []
        #: Children started since the start.
        self.started = 0
        #: Connections refused for the cap or the rate since the start.
        self.refused = 0
        #: Children terminated for their age since the start.
        self.terminated = 0
        #: Children ended to make room for a new client since the start.
        self.evicted = 0
        self._born: dict[int, float] = {}
        self._conns: dict[int, socket.socket] = {}  # a nowait child's connection, our copy
        self._pending: collections.deque[tuple[socket.socket, float]] = collections.deque()
        self._tokens = max(1.0, self.limits.evictions_per_second)
        self._tokens_at = time.monotonic()
        self._evict_log = OverloadLog()
        self._terminating: dict[int, float] = {}
        self._recent: collections.deque[float] = collections.deque()
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
        settings = json.dumps(dataclasses.asdict(self.config))
        command = [sys.executable, "-m", "wirelab.zen.inetd", f"{self.mode}-child"]
        command += ["--config", settings]
        if self.mode == "wait":
            command += ["--wait-idle", repr(self.wait_idle)]
        return command

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
        try:
            child = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                self._command(),
                stdin=stdin.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=self._log if self._log is not None else None,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            # Out of descriptors or processes: like a real inetd, drop this one and go on.
            if self._spawn_errors.ready():
                log.warning("cannot start a %s child (%s); dropping connections", self.mode, exc)
            time.sleep(_POLL)
            return False
        now = time.monotonic()
        self.children.append(child)
        self._born[child.pid] = now
        if self.mode == "nowait":
            self._conns[child.pid] = stdin
        self._recent.append(now)
        self.started += 1
        return True

    def _too_fast(self, now: float, extra: int = 0) -> str | None:
        """Why no child may start now for the rate limit (``extra`` about to), or ``None``."""
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) + extra >= self.limits.per_minute:
            return f"{len(self._recent)} children started in the last minute, the rate limit"
        return None

    def _evict(self, now: float) -> bool:
        """End the oldest child, if the eviction rate allows.

        The oldest, not the idlest: a slow client can look busy by sending a byte now and then,
        but it cannot look young. A normal client asks and goes; a child that has run longest is
        the likeliest to be held by a client that will not let go.
        """
        rate = self.limits.evictions_per_second
        self._tokens = min(max(1.0, rate), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        candidates = [c for c in self.children if c.pid not in self._terminating]
        if rate <= 0 or self._tokens < 1 or not candidates:
            return False
        self._tokens -= 1
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
                "for each new client (%d ended since the last such line)",
                len(self.children),
                now - self._born[victim.pid],
                count,
            )
        return True

    def _admit(self, conn: socket.socket, ready: list[socket.socket]) -> None:
        """Give a new connection a slot now (into ``ready``, started after the accepts), a slot
        soon (an ended child's), or a refusal."""
        if _gone(conn):
            conn.close()
            return
        now = time.monotonic()
        why = self._too_fast(now, len(ready))
        busy = len(self.children) + len(ready)
        if why is None and busy < self.max_children and not self._pending:
            ready.append(conn)
            return
        if why is None and len(self.children) >= self.max_children and self._evict(now):
            # (Only when every slot holds a running child: slots taken by children about to
            # start are not worth ending a child for.)
            self._pending.append((conn, now))
            return
        self._refuse(conn, why or f"{busy} children running, the cap")

    def _start_pending(self) -> None:
        """Start children for connections waiting on a freed slot; drop those waiting too long."""
        now = time.monotonic()
        while self._pending and (
            len(self.children) < self.max_children or now - self._pending[0][1] > _PENDING_TIMEOUT
        ):
            conn, since = self._pending.popleft()
            why = self._too_fast(now)
            if now - since > _PENDING_TIMEOUT or why is not None:
                self._refuse(conn, why or "no child left its slot in time")
                continue
            conn.setblocking(True)
            if not self._spawn(conn):
                conn.close()

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
        # Decide for every waiting connection first (refusing is cheap), then start children
        # (slow), deciding again after each start: a burst is sorted out at once, and a client
        # that comes while we fork is not left behind the burst in the backlog.
        self._reap()
        ready: list[socket.socket] = []
        try:
            self._accept_waiting(ready)
            while ready:
                conn = ready.pop(0)
                conn.setblocking(True)
                if not self._spawn(conn):
                    conn.close()
                self._accept_waiting(ready)
        finally:
            for conn in ready:
                conn.close()

    def _accept_waiting(self, ready: list[socket.socket]) -> None:
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
            self._admit(conn, ready)

    def _reap(self) -> None:
        now = time.monotonic()
        alive = []
        for child in self.children:
            if child.poll() is not None:
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
                    self._on_readable()
                self._reap()
        finally:
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


def _inherited_socket() -> socket.socket:
    """Take fd 0 as a socket and point fd 0 at /dev/null (the book's ``in_zen`` habit)."""
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return sock


def _nowait_child(config: ZenConfig) -> None:
    from wirelab.zen.blocking import converse

    sock = _inherited_socket()
    sock.setblocking(True)
    converse(sock, config)


def _wait_child(config: ZenConfig, wait_idle: float) -> None:
    import asyncio  # here, not at the top: a nowait child would pay ~7 MB for it

    from wirelab.zen.aio import serve_zen

    sock = _inherited_socket()

    async def run() -> None:
        await serve_zen(sock, config, idle_exit=wait_idle)

    asyncio.run(run())
    log.warning("nobody connected for %g seconds; exiting", wait_idle)


def main(argv: list[str] | None = None) -> None:
    """``python -m wirelab.zen.inetd nowait|wait [HOST] [-p PORT]`` or a child mode."""
    parser = argparse.ArgumentParser(prog="python -m wirelab.zen.inetd")
    parser.add_argument("mode", choices=["nowait", "wait", "nowait-child", "wait-child"])
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--config", default="{}", help="ZenConfig as JSON")
    parser.add_argument("--wait-idle", type=float, default=DEFAULT_WAIT_IDLE)
    parser.add_argument("--log", type=Path, default=None, help="file the children log to")
    parser.add_argument(
        "--max-children", type=int, default=None, help="nowait: children at once (default: 32)"
    )
    parser.add_argument(
        "--per-minute", type=int, default=DEFAULT_PER_MINUTE, help="nowait: starts per minute"
    )
    parser.add_argument(
        "--child-idle", type=float, default=DEFAULT_CHILD_IDLE, help="nowait: a child's idle s"
    )
    parser.add_argument(
        "--child-lifetime",
        type=float,
        default=DEFAULT_CHILD_LIFETIME,
        help="nowait: seconds a child may live",
    )
    parser.add_argument(
        "--evictions-per-second",
        type=float,
        default=DEFAULT_EVICTIONS_PER_SECOND,
        help="nowait: oldest children ended per second for newcomers at the cap (0: refuse)",
    )
    args = parser.parse_args(argv)
    # A parent that waits with sigwait() blocks these; exec keeps the mask, so undo it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    config = ZenConfig(**json.loads(args.config))
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s zen[{os.getpid()}] %(message)s", force=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        if args.mode == "nowait-child":
            _nowait_child(config)
        elif args.mode == "wait-child":
            _wait_child(config, args.wait_idle)
        else:
            from wirelab.net.addresses import format_address, listen_tcp

            try:
                limits = NowaitLimits(
                    args.max_children,
                    args.per_minute,
                    args.child_idle,
                    args.child_lifetime,
                    args.evictions_per_second,
                )
            except ConfigError as exc:
                parser.error(str(exc))
            listener = listen_tcp(args.host, args.port)
            server = InetdServer(
                listener,
                args.mode,
                config,
                wait_idle=args.wait_idle,
                limits=limits,
                log_path=args.log,
            )
            print(
                f"inetd ({args.mode}) listening at {format_address(listener.getsockname())}",
                file=sys.stderr,
                flush=True,
            )
            # SIGTERM stops it like Ctrl-C does: the children are terminated, not orphaned.
            signal.signal(signal.SIGTERM, lambda *_: server.stop())
            try:
                server.run()
            finally:
                server.stop()


if __name__ == "__main__":
    main()
