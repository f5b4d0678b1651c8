"""The ``python -m wirelab.zen.inetd`` command line: the children, and the super-server by hand.

The super-server (:mod:`wirelab.zen.inetd`) starts each child as
``python -m wirelab.zen.inetd nowait-child|wait-child --config JSON`` with its socket as
fd 0 (:func:`child_command` builds that line, so both ends of it live here); the same
children work under a real inetd or systemd socket activation (``Accept=yes`` /
``Accept=no``):

* ``nowait-child`` answers the one client on fd 0 with the blocking server's
  :func:`~wirelab.zen.blocking.converse`, then exits (closing ``--ready-fd`` first, so the
  super-server knows it is up);
* ``wait-child`` takes the listener on fd 0 and serves clients with the asyncio server until
  nobody has been connected for ``--wait-idle`` seconds.

``nowait`` and ``wait`` run the super-server itself on a port, with the bounds of
:mod:`wirelab.zen.inetd_limits` as options. Children log to their standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from wirelab.errors import ConfigError
from wirelab.zen._core import ZenConfig
from wirelab.zen.inetd_limits import (
    DEFAULT_CHILD_IDLE,
    DEFAULT_CHILD_LIFETIME,
    DEFAULT_EVICTIONS_PER_SECOND,
    DEFAULT_MAX_PENDING,
    DEFAULT_PENDING_TIMEOUT,
    DEFAULT_PER_MINUTE,
    NowaitLimits,
)

__all__ = ["DEFAULT_WAIT_IDLE", "child_command", "main"]

log = logging.getLogger("wirelab.zen.inetd")

#: Seconds a ``wait`` child keeps the listener with nobody connected (the book's 8).
DEFAULT_WAIT_IDLE = 8.0


def child_command(mode: str, config: ZenConfig, wait_idle: float) -> list[str]:
    """The command that starts a ``mode`` (``nowait`` or ``wait``) child with ``config``."""
    settings = json.dumps(dataclasses.asdict(config))
    command = [sys.executable, "-m", "wirelab.zen.inetd", f"{mode}-child"]
    command += ["--config", settings]
    if mode == "wait":
        command += ["--wait-idle", repr(wait_idle)]
    return command


def _inherited_socket() -> socket.socket:
    """Take fd 0 as a socket and point fd 0 at /dev/null (the book's ``in_zen`` habit)."""
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return sock


def _nowait_child(config: ZenConfig, ready_fd: int | None = None) -> None:
    from wirelab.zen.blocking import converse

    sock = _inherited_socket()
    sock.setblocking(True)
    if ready_fd is not None:
        with contextlib.suppress(OSError):
            os.close(ready_fd)  # tell our super-server we are up (under a real inetd: absent)
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
        help="nowait: oldest children ended per second for waiting newcomers at the cap",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        help="nowait: connections waiting for a slot, newest served first (0: refuse at the cap)",
    )
    parser.add_argument(
        "--pending-timeout",
        type=float,
        default=DEFAULT_PENDING_TIMEOUT,
        help="nowait: seconds a connection waits for a slot",
    )
    parser.add_argument(
        "--max-starting",
        type=int,
        default=None,
        help="nowait: children starting up at once (default: the CPUs, at least 2)",
    )
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # A parent that waits with sigwait() blocks these; exec keeps the mask, so undo it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    config = ZenConfig(**json.loads(args.config))
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s zen[{os.getpid()}] %(message)s", force=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        if args.mode == "nowait-child":
            _nowait_child(config, args.ready_fd)
        elif args.mode == "wait-child":
            _wait_child(config, args.wait_idle)
        else:
            from wirelab.net.addresses import format_address, listen_tcp
            from wirelab.zen.inetd import InetdServer

            try:
                limits = NowaitLimits(
                    args.max_children,
                    args.per_minute,
                    args.child_idle,
                    args.child_lifetime,
                    args.evictions_per_second,
                    args.max_pending,
                    args.pending_timeout,
                    args.max_starting,
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
