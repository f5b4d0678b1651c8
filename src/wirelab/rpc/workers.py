"""Worker processes for ``wirelab rpc serve --kind xmlrpc|jsonrpc --workers N``.

One event loop is one core. The XML-RPC and JSON-RPC functions keep no state, so N processes
can serve the same port with nothing shared but the socket (decision 0183):

* the parent binds one listening socket and starts N workers (``python -m
  wirelab.rpc.workers``), each inheriting it; the kernel hands each new connection to
  whichever worker accepts it first, so an idle worker takes it before a busy one;
* each worker is the single-process server (:mod:`wirelab.rpc.http` on uvloop), with its own
  limits: the connection cap (1024 by default) is **per worker**;
* a worker prints ``ready`` once it listens; the pool is ready only when every worker is;
* a worker that dies is restarted, on the same socket (no connection attempt is refused
  meanwhile: the others accept); a restart that does not start counts as one more death;
  more than ``max_restarts`` deaths within ``restart_window`` seconds and the pool gives
  up (:attr:`WorkerPool.failed`);
* :meth:`WorkerPool.aclose` sends SIGTERM to every worker, waits, then kills stragglers.
  Workers run in their own session (a Ctrl-C in the terminal reaches the parent only, which
  then stops them) and watch their standard input, a pipe from the parent: if the parent
  dies, even by SIGKILL, the pipe ends and the worker stops. Nothing is left behind.

RPyC is not served this way: its service keeps state per connection and calls back into the
client from inside a call (decision 0180); it stays one process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import time
from asyncio.subprocess import Process

from wirelab.errors import ConfigError, ServiceUnavailable
from wirelab.rpc.http import RPCHTTPLimits

__all__ = [
    "MAX_WORKERS",
    "WORKER_KINDS",
    "WorkerPool",
    "default_workers",
    "main",
]

log = logging.getLogger(__name__)

#: The kinds that can be served by worker processes (stateless functions).
WORKER_KINDS = ("xmlrpc", "jsonrpc")
#: Most workers ``--workers`` accepts.
MAX_WORKERS = 64
#: Most workers by default, however many CPUs there are.
DEFAULT_WORKERS_CAP = 8
#: Seconds a worker has to start and report ready.
START_TIMEOUT = 20.0
#: Seconds a worker has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0


def default_workers() -> int:
    """One worker per CPU, at most :data:`DEFAULT_WORKERS_CAP`."""
    return max(1, min(os.cpu_count() or 1, DEFAULT_WORKERS_CAP))


def check_workers(kind: str, workers: int) -> None:
    """Refuse a pool that cannot be.

    Raises:
        ConfigError: a kind without workers, or a count outside 1 to :data:`MAX_WORKERS`.
    """
    if kind not in WORKER_KINDS:
        raise ConfigError(
            f"{kind} is served from one process: only xmlrpc and jsonrpc have workers"
        )
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be 1 to {MAX_WORKERS}, not {workers}")


class WorkerPool:
    """``workers`` processes serving ``kind`` on ``listener``, supervised.

    Args:
        kind: ``"xmlrpc"`` or ``"jsonrpc"``.
        listener: a listening socket; the pool owns it from now on.
        workers: how many processes.
        limits: each worker's limits (the connection cap is per worker).
        max_restarts: deaths tolerated within ``restart_window`` seconds.
        restart_window: seconds.

    Raises:
        ConfigError: see :func:`check_workers`.
    """

    def __init__(
        self,
        kind: str,
        listener: socket.socket,
        workers: int,
        *,
        limits: RPCHTTPLimits | None = None,
        max_restarts: int = 10,
        restart_window: float = 60.0,
    ) -> None:
        check_workers(kind, workers)
        self.kind = kind
        self.socket = listener
        self.workers = workers
        self.limits = limits or RPCHTTPLimits()
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        #: Workers restarted since the start.
        self.restarts = 0
        self._deaths: list[float] = []
        self._procs: list[Process | None] = [None] * workers
        self._watches: set[asyncio.Task[None]] = set()
        self._closing = False
        self._failed: asyncio.Future[str] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the workers serve."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, by index."""
        return [proc.pid for proc in self._procs if proc is not None]

    @property
    def failed(self) -> asyncio.Future[str]:
        """Done (with the reason) when workers died too often and the pool gave up."""
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        return self._failed

    async def start(self) -> None:
        """Start every worker and return once each one listens.

        Raises:
            ServiceUnavailable: a worker failed to start (then none is left running).
        """
        try:
            procs = await asyncio.gather(*(self._spawn(i) for i in range(self.workers)))
        except BaseException:
            await self.aclose()
            raise
        for index, proc in enumerate(procs):
            self._procs[index] = proc
            self._watch(index, proc)

    async def _spawn(self, index: int) -> Process:
        fd = self.socket.fileno()
        limits = json.dumps(dataclasses.asdict(self.limits))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wirelab.rpc.workers",
            "--kind",
            self.kind,
            "--fd",
            str(fd),
            "--index",
            str(index),
            "--limits",
            limits,
            pass_fds=(fd,),
            stdin=asyncio.subprocess.PIPE,  # its end is the worker's sign that we are gone
            stdout=asyncio.subprocess.PIPE,  # "ready"
            start_new_session=True,  # a Ctrl-C reaches us, and we stop the workers
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        except BaseException:  # cancelled while it starts (the pool closing): no orphan
            await _stop(proc)
            raise
        if line.strip() != b"ready":
            await _stop(proc)
            raise _NotStarted(index, proc.pid, proc.returncode)
        return proc

    def _watch(self, index: int, proc: Process) -> None:
        task = asyncio.get_running_loop().create_task(
            self._supervise(index, proc), name=f"rpc worker {index}"
        )
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _supervise(self, index: int, proc: Process) -> None:
        pid = proc.pid
        code: int | None = await proc.wait()
        while not self._closing:
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < self.restart_window] + [now]
            how = "did not start" if code is None else _how(code)
            if len(self._deaths) > self.max_restarts:
                reason = (
                    f"rpc worker {index} (pid {pid}) {how}: "
                    f"{len(self._deaths)} deaths in {self.restart_window:g} s, giving up"
                )
                log.error("%s", reason)
                if not self.failed.done():
                    self.failed.set_result(reason)
                return
            log.warning("rpc worker %d (pid %d) %s: restarting it", index, pid, how)
            await asyncio.sleep(0.1 * len(self._deaths))  # a crash loop slows down
            if self._closing:
                return
            try:
                proc = await self._spawn(index)
            except _NotStarted as exc:  # a death too: counted, and tried again
                pid, code = exc.pid, None
                continue
            self._procs[index] = proc
            self.restarts += 1
            if self._closing:  # closed while it started: aclose did not see it
                await _stop(proc)
                return
            pid, code = proc.pid, await proc.wait()

    async def aclose(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`) and wait."""
        self._closing = True
        for task in list(self._watches):
            task.cancel()
        await asyncio.gather(*(_stop(p) for p in self._procs if p is not None))
        if self._watches:
            await asyncio.wait(list(self._watches), timeout=STOP_TIMEOUT)
        self.socket.close()


class _NotStarted(ServiceUnavailable):
    """A worker exited (or said something else) before it said ``ready``."""

    def __init__(self, index: int, pid: int, code: int | None) -> None:
        if code is None:
            shown = "it did not say ready"
        else:
            shown = f"signal {-code}" if code < 0 else f"exit {code}"
        super().__init__(f"rpc worker {index} (pid {pid}) did not start ({shown})")
        self.pid = pid


def _how(code: int) -> str:
    return f"died (signal {-code})" if code < 0 else f"died (exit {code})"


async def _stop(proc: Process) -> None:
    """SIGTERM, wait, SIGKILL if need be; close its pipes."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()


# -- the worker process ------------------------------------------------------------------------


async def _serve(kind: str, fd: int, limits: RPCHTTPLimits) -> None:
    from wirelab.rpc.server import serve_on_socket

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def parent_gone() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, parent_gone)
    server = await serve_on_socket(kind, socket.socket(fileno=fd), limits=limits)
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await server.aclose()


def main(argv: list[str] | None = None) -> None:
    """Entry point of one worker process (started by :class:`WorkerPool`)."""
    parser = argparse.ArgumentParser(prog="python -m wirelab.rpc.workers")
    parser.add_argument("--kind", choices=WORKER_KINDS, required=True)
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--limits", default="{}", help="RPCHTTPLimits as JSON")
    args = parser.parse_args(argv)
    # A parent that waits with sigwait() blocks these; exec keeps the mask, so undo it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    logging.basicConfig(
        level=logging.WARNING,
        format=f"rpc worker {args.index} ({os.getpid()}): %(message)s",
    )
    logging.getLogger("wirelab.rpc").setLevel(logging.INFO)
    limits = RPCHTTPLimits(**json.loads(args.limits))
    from wirelab.rpc.http import use_uvloop

    use_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.kind, args.fd, limits))


if __name__ == "__main__":
    main()
