"""Run the real memcached daemon as a child process: start, wait until it answers, stop.

The lab, the tests and the benchmarks all use this. Each daemon:

* listens on loopback only, TCP only (``-U 0``: memcached's UDP port was used for
  amplification attacks), with 64 MB of memory and at most 1024 connections;
* drops root to ``nobody`` when we run as root (memcached refuses to run as root);
* gets a free port when asked for port 0: memcached cannot bind port 0 and report it, so we
  bind port 0 ourselves, close, hand that port to memcached, and retry with a new port if
  another process took it in between;
* is ready only once it answers ``version``;
* dies with us: it stays in our process group, and on Linux ``PR_SET_PDEATHSIG`` makes the
  kernel send it SIGTERM when the thread that started it ends, even if we are SIGKILLed.
  So start daemons from a thread that lives as long as they should (the lab's event loop).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from wirelab.config import LOOPBACK
from wirelab.errors import ConfigError, ServiceUnavailable, Timeout

__all__ = ["MemcachedDaemon", "describe_exit", "memcached_binary"]

log = logging.getLogger(__name__)

#: Shown when the binary is missing.
INSTALL_HINT = "memcached is not installed (install it with: apt-get install memcached)"
#: Seconds a daemon has to answer ``version`` after it starts.
DEFAULT_START_TIMEOUT = 10.0
#: Free ports tried when another process takes the one we picked.
_PORT_ATTEMPTS = 5
_PR_SET_PDEATHSIG = 1


def memcached_binary() -> str:
    """The memcached executable: ``$WIRELAB_MEMCACHED``, else ``memcached`` on the PATH.

    Raises:
        ServiceUnavailable: it is not installed (the message says how to install it).
    """
    explicit = os.environ.get("WIRELAB_MEMCACHED")
    if explicit:
        if os.access(explicit, os.X_OK) and not os.path.isdir(explicit):
            return explicit
        raise ServiceUnavailable(f"{INSTALL_HINT}; WIRELAB_MEMCACHED={explicit} is not a program")
    found = shutil.which("memcached") or next(
        (p for p in ("/usr/bin/memcached", "/usr/sbin/memcached") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise ServiceUnavailable(INSTALL_HINT)
    return found


def describe_exit(code: int) -> str:
    """``"killed by SIGKILL"`` or ``"exited with status 1"`` for a Popen return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _account() -> tuple[int, int] | None:
    """The (uid, gid) to drop to when we run as root: nobody's (memcached refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when its parent goes."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


class MemcachedDaemon:
    """One memcached process on ``host:port``.

    Example::

        with MemcachedDaemon(port=0) as daemon:
            cluster = CacheCluster([daemon.address])

    Args:
        host: address to listen on (loopback by default).
        port: port, or 0 for a free one.
        memory_mb: ``-m``: memory for items, in megabytes.
        connections: ``-c``: most simultaneous connections.
        logfile: where memcached's own messages go (default: a temporary file).
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        memory_mb: int = 64,
        connections: int = 1024,
        logfile: Path | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.memory_mb = memory_mb
        self.connections = connections
        self.logfile = logfile
        self.binary = memcached_binary()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` it listens on."""
        return (self.host, self.port)

    @property
    def pid(self) -> int:
        """The daemon's process ID."""
        if self.process is None:
            raise ConfigError("memcached is not running")
        return self.process.pid

    def __str__(self) -> str:
        return f"memcached {self.host}:{self.port}"

    # -- start --------------------------------------------------------------------------------

    def spawn(self, *, same_port: bool = False) -> None:
        """Start the process (returns at once; :meth:`poll_ready` tells when it answers).

        Args:
            same_port: listen on the port of the last start even when port 0 was asked for
                (a restart: clients already know that port).
        """
        if self.requested_port == 0 and not same_port:
            self.port = _free_port(self.host)
        args = [
            self.binary,
            "-l",
            self.host,
            "-p",
            str(self.port),
            "-U",
            "0",
            "-m",
            str(self.memory_mb),
            "-c",
            str(self.connections),
        ]
        account = _account()
        if account is None and os.geteuid() == 0:
            args += ["-u", "root"]  # no "nobody" account: memcached must be told
        if self._log is None:
            if self.logfile is not None:
                self.logfile.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.logfile, "ab")  # noqa: SIM115 - kept until stop()
            else:
                self._log = tempfile.TemporaryFile()  # noqa: SIM115 - kept until stop()
        self._log_start = self._log.seek(0, os.SEEK_END)
        self.process = subprocess.Popen(  # noqa: S603 - our arguments, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            close_fds=True,
            # Drop root in the child before exec (not with memcached's own -u): the kernel
            # clears PR_SET_PDEATHSIG when a process changes its user, so the drop must come
            # first; Popen switches user before it calls preexec_fn.
            user=account[0] if account else None,
            group=account[1] if account else None,
            extra_groups=[] if account else None,
            preexec_fn=_die_with_parent(),  # only prctl, looked up before the fork
        )
        log.info("started %s (pid %d)", self, self.process.pid)

    def poll_ready(self) -> bool:
        """True once the daemon answers ``version``; False while it is still starting.

        Raises:
            ConfigError: it exited (its port is taken by someone else, or a bad option);
                with a port we picked, the caller may :meth:`spawn` again.
        """
        if self.process is None:
            raise ConfigError("memcached was not started")
        code = self.process.poll()
        if code is not None:
            self.process = None
            message = self._log_tail()
            if "in use" in message.lower():
                raise ConfigError(
                    f"memcached could not listen on {self.host}:{self.port}: address already in "
                    "use (another memcached? stop it, or start the lab with --ephemeral)"
                )
            raise ConfigError(f"memcached exited with status {code}: {message or 'no message'}")
        try:
            with socket.create_connection(self.address, timeout=0.5) as sock:
                sock.sendall(b"version\r\n")
                reply = sock.recv(128)
        except OSError:
            return False
        return reply.startswith(b"VERSION ")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(self._log_start)
        text = self._log.read(4096).decode("utf-8", "replace").strip()
        self._log.seek(0, os.SEEK_END)
        return " ".join(text.split())

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> MemcachedDaemon:
        """Spawn and wait until the daemon answers (blocking).

        Raises:
            ConfigError: it could not start (the port is taken ...).
            Timeout: it did not answer within ``timeout`` seconds.
        """
        for attempt in range(_PORT_ATTEMPTS):
            self.spawn()
            deadline = time.monotonic() + timeout
            try:
                while not self.poll_ready():
                    if time.monotonic() > deadline:
                        self.stop()
                        raise Timeout(f"{self} did not answer within {timeout:g} s")
                    time.sleep(0.01)
            except ConfigError as exc:
                if not self._retry_port(exc, attempt):
                    self.stop()
                    raise
                continue
            return self
        raise AssertionError("unreachable")  # pragma: no cover - _retry_port raises first

    def _retry_port(self, exc: ConfigError, attempt: int) -> bool:
        """True when a port we picked was taken in between and another try is allowed."""
        raced = self.requested_port == 0 and "already in use" in str(exc)
        if raced and attempt + 1 < _PORT_ATTEMPTS:
            log.info("port %d was taken before memcached bound it; trying another", self.port)
            return True
        return False

    async def astart(
        self, timeout: float = DEFAULT_START_TIMEOUT, *, same_port: bool = False
    ) -> MemcachedDaemon:
        """:meth:`start` for an event loop: spawns in the loop's thread, sleeps with asyncio.

        Args:
            same_port: a restart on the port of the last start; one try, no other port.
        """
        import asyncio

        for attempt in range(1 if same_port else _PORT_ATTEMPTS):
            self.spawn(same_port=same_port)
            deadline = time.monotonic() + timeout
            try:
                while not self.poll_ready():
                    if time.monotonic() > deadline:
                        self.stop()
                        raise Timeout(f"{self} did not answer within {timeout:g} s")
                    await asyncio.sleep(0.01)
            except ConfigError as exc:
                if same_port or not self._retry_port(exc, attempt):
                    self.stop()
                    raise
                continue
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    # -- watch --------------------------------------------------------------------------------

    def poll(self) -> int | None:
        """None while the daemon runs; its return code once it has exited, reaped (no zombie).

        A negative code is the signal that killed it (Popen's convention; see
        :func:`describe_exit`). :attr:`pid` still names the dead process until the next start.

        Raises:
            ConfigError: it was never started, or it was stopped.
        """
        if self.process is None:
            raise ConfigError("memcached is not running")
        return self.process.poll()  # waitpid(WNOHANG): reaps the child once it has exited

    # -- stop ---------------------------------------------------------------------------------

    def terminate(self) -> None:
        """Send SIGTERM and return at once (memcached exits within about a second).

        Stopping several daemons: :meth:`terminate` each, then :meth:`stop` each, so they
        shut down side by side.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, wait, SIGKILL if it lingers, and reap it (no zombie). Safe to repeat."""
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s ignored SIGTERM; killing it", self)
                    proc.kill()
                    proc.wait(timeout)
            log.info("stopped %s (pid %d, status %s)", self, proc.pid, proc.returncode)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the daemon now (for fault tests: a node that dies mid-run) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5.0)
        self.stop()

    def __enter__(self) -> MemcachedDaemon:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
