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
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path
from typing import IO

from wirelab.zen._common import RESOURCE_ERRNOS, RunningServer, _RateLimit, accept_backoff_log
from wirelab.zen._core import ZenConfig

__all__ = ["DEFAULT_WAIT_IDLE", "InetdServer", "main", "start_inetd_nowait", "start_inetd_wait"]

log = logging.getLogger("wirelab.zen.inetd")

#: Seconds a ``wait`` child keeps the listener with nobody connected (the book's 8).
DEFAULT_WAIT_IDLE = 8.0

#: Children a ``nowait`` super-server runs at once; beyond that, accepting pauses.
DEFAULT_MAX_CHILDREN = 256

_POLL = 0.05


class InetdServer:
    """A tiny super-server for one port: run :meth:`run` in a thread, :meth:`stop` to end."""

    def __init__(
        self,
        listener: socket.socket,
        mode: str,
        config: ZenConfig,
        *,
        wait_idle: float = DEFAULT_WAIT_IDLE,
        max_children: int = DEFAULT_MAX_CHILDREN,
        log_path: Path | None = None,
    ) -> None:
        if mode not in ("nowait", "wait"):
            raise ValueError(f"mode must be 'nowait' or 'wait', not {mode!r}")
        self.listener = listener
        self.mode = mode
        self.config = config
        self.wait_idle = wait_idle
        self.max_children = max_children
        self.children: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self._log: IO[bytes] | None = log_path.open("ab") if log_path else None
        self._spawn_errors = _RateLimit()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._watching = False
        listener.setblocking(False)
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

    def _spawn(self, stdin: socket.socket) -> bool:
        """Start a child on ``stdin``; False (logged, after a pause) when the OS refused."""
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
        self.children.append(child)
        self.started += 1
        return True

    def _on_readable(self) -> None:
        if self.mode == "wait":
            self._watch(False)  # the child owns the listener until it exits
            if not self._spawn(self.listener):
                self._watch(True)  # nobody took it: try again on the next connection
            return
        while len(self.children) < self.max_children:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    accept_backoff_log(exc)
                    time.sleep(0.1)
                return
            with conn:
                conn.setblocking(True)
                self._spawn(conn)
        self._watch(False)

    def _reap(self) -> None:
        alive = [c for c in self.children if c.poll() is None]
        if len(alive) != len(self.children):
            self.children = alive
            if self.mode == "wait":
                self._watch(not alive)
            else:
                self._watch(len(alive) < self.max_children)

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
            for child in self.children:
                if child.poll() is None:
                    child.terminate()
            for child in self.children:
                try:
                    child.wait(5.0)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(5.0)
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
    listener: socket.socket, config: ZenConfig, *, log_path: Path | None = None
) -> RunningServer:
    """Our super-server in ``nowait`` mode: a child process per connection."""
    return _start("inetd-nowait", listener, "nowait", config, log_path=log_path)


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

            listener = listen_tcp(args.host, args.port)
            server = InetdServer(
                listener, args.mode, config, wait_idle=args.wait_idle, log_path=args.log
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
