"""Pre-forked worker processes serving Zen (chapter 7, over TCP), each on uvloop.

The parent binds the port, then starts ``workers`` processes (one per CPU by default). With
``SO_REUSEPORT`` (Linux, BSD) the first worker inherits the parent's listener and every other
worker binds its own listener on the same address, so the kernel spreads new connections
across the workers' accept queues; without it, every worker inherits the one listener and
they take turns accepting. Each worker runs the fastest loop we have (uvloop, else asyncio)
with the Protocol server of :mod:`wirelab.zen.aio`. A worker reports ``ready`` on its
standard output once it listens, and stops on SIGTERM.

Run a worker by hand: ``python -m wirelab.zen.prefork --fd 3`` (with a listener on fd 3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time

from wirelab.errors import ServiceUnavailable
from wirelab.zen._common import RunningServer
from wirelab.zen._core import ZenConfig

__all__ = ["main", "start_prefork"]

log = logging.getLogger("wirelab.zen.server")

#: Seconds a worker has to start and report ready.
START_TIMEOUT = 20.0


def _reuseport_listener(address: tuple[str, int], family: socket.AddressFamily) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def _wait_ready(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    waiting = {p.stdout.fileno(): p for p in procs if p.stdout is not None}
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ServiceUnavailable("prefork workers did not start in time")
        readable, _, _ = select.select(list(waiting), [], [], left)
        for fd in readable:
            line = os.read(fd, 64)
            proc = waiting.pop(fd)
            if not line.startswith(b"ready"):
                raise ServiceUnavailable(f"a prefork worker failed to start (exit {proc.poll()})")


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 5.0
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)
        if proc.stdout is not None:
            proc.stdout.close()


def start_prefork(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """Serve with ``config.workers`` processes (default: one per CPU) sharing the port."""
    count = config.workers or os.cpu_count() or 2
    address = listener.getsockname()
    reuseport = hasattr(socket, "SO_REUSEPORT") and bool(
        listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    )
    settings = json.dumps(dataclasses.asdict(config))
    command = [sys.executable, "-m", "wirelab.zen.prefork", "--config", settings]
    procs: list[subprocess.Popen[bytes]] = []
    extra: list[socket.socket] = []
    try:
        for index in range(count):
            sock = listener
            if reuseport and index > 0:
                sock = _reuseport_listener(address, listener.family)
                extra.append(sock)
            fd = sock.fileno()
            procs.append(
                subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                    [*command, "--fd", str(fd), "--index", str(index)],
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                )
            )
        _wait_ready(procs, time.monotonic() + START_TIMEOUT)
    except BaseException:
        _terminate(procs)
        raise
    finally:
        for sock in extra:
            sock.close()
    listener.close()  # the workers hold it now

    def stop() -> None:
        _terminate(procs)

    return RunningServer("prefork", address[:2], stop, pids=[p.pid for p in procs])


def _worker(fd: int, config: ZenConfig) -> None:
    from wirelab.zen.aio import new_uvloop, serve_zen

    sock = socket.socket(fileno=fd)
    try:
        loop = new_uvloop()
    except ServiceUnavailable:
        loop = asyncio.new_event_loop()

    async def main() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)

        def ready() -> None:
            sys.stdout.write("ready\n")
            sys.stdout.flush()

        await serve_zen(sock, config, ready=ready, stop=stop)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of one worker process."""
    parser = argparse.ArgumentParser(prog="python -m wirelab.zen.prefork")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listener")
    parser.add_argument("--config", default="{}", help="ZenConfig as JSON")
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    # A parent that waits with sigwait() blocks these; exec keeps the mask, so undo it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    logging.basicConfig(level=logging.WARNING, format=f"zen-worker-{args.index}: %(message)s")
    config = ZenConfig(**json.loads(args.config))
    with contextlib.suppress(KeyboardInterrupt):
        _worker(args.fd, config)


if __name__ == "__main__":
    main()
