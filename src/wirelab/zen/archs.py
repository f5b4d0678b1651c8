"""The table of Zen server architectures: name -> how to start it, and what it shows.

``wirelab zen archs`` prints these names; :func:`start_server` binds and starts any of them.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable
from dataclasses import dataclass

from wirelab.errors import ConfigError
from wirelab.net.addresses import listen_tcp
from wirelab.zen._common import RunningServer
from wirelab.zen._core import ZenConfig

__all__ = ["ARCHS", "DEFAULT_ARCH", "Arch", "start_server"]

Starter = Callable[[socket.socket, ZenConfig], RunningServer]


@dataclass(frozen=True)
class Arch:
    """One architecture: its name, the book program it replaces, and a one-line summary."""

    name: str
    book: str
    summary: str
    start: Starter
    concurrent: bool = True


def _lazy(module: str, function: str) -> Starter:
    def start(listener: socket.socket, config: ZenConfig) -> RunningServer:
        import importlib

        starter: Starter = getattr(importlib.import_module(f"wirelab.zen.{module}"), function)
        return starter(listener, config)

    return start


#: Every architecture, in the order the chapter tells them.
ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("single", "srv_single.py", "one thread, one client at a time",
             _lazy("blocking", "start_single"), concurrent=False),
        Arch("threadpool", "srv_threaded.py", "N threads blocked in accept() on one listener",
             _lazy("blocking", "start_threadpool")),
        Arch("threaded", "srv_legacy1.py", "socketserver, a thread per connection (bounded)",
             _lazy("blocking", "start_threaded")),
        Arch("selectors", "srv_async.py", "hand-written selectors loop, per-socket buffers",
             _lazy("evloop", "start_selectors")),
        Arch("asyncore", "srv_legacy2.py", "asyncore/asynchat dispatchers (the backports)",
             _lazy("legacy", "start_asyncore")),
        Arch("asyncio-protocol", "srv_asyncio1.py", "asyncio Protocol callbacks",
             _lazy("aio", "start_asyncio_protocol")),
        Arch("asyncio-streams", "srv_asyncio2.py", "asyncio streams, a coroutine per client",
             _lazy("aio", "start_asyncio_streams")),
        Arch("uvloop", "-", "the Protocol server on uvloop (libuv)",
             _lazy("aio", "start_uvloop")),
        Arch("prefork", "-", "worker processes sharing the port, each on uvloop",
             _lazy("prefork", "start_prefork")),
        Arch("inetd-nowait", "in_zen1.py", "super-server: a process per connection (fd 0)",
             _lazy("inetd", "start_inetd_nowait")),
        Arch("inetd-wait", "in_zen2.py", "super-server: a process takes the listener until idle",
             _lazy("inetd", "start_inetd_wait")),
    )
}  # fmt: skip


def _fastest_available() -> str:
    """uvloop where it is installed (the fastest measured), else the asyncio Protocol server
    that it runs (the same code on the stdlib loop)."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio-protocol"


#: The architecture ``wirelab zen serve`` and the lab use: the fastest one measured here that
#: this platform has (see docs/chapters/07-zen.md and bench/results/zen.json).
DEFAULT_ARCH = _fastest_available()


def start_server(
    arch: str = DEFAULT_ARCH,
    host: str = "127.0.0.1",
    port: int | str = 0,
    config: ZenConfig | None = None,
) -> RunningServer:
    """Bind ``host``:``port`` and serve Zen with ``arch``; return once it accepts clients.

    Raises:
        ConfigError: no such architecture.
        ConnectError: the address could not be bound.
        ServiceUnavailable: the architecture cannot run here (uvloop missing ...).
    """
    try:
        chosen = ARCHS[arch]
    except KeyError:
        raise ConfigError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})") from None
    listener = listen_tcp(host, port, backlog=1024, reuse_port=arch == "prefork")
    try:
        return chosen.start(listener, config or ZenConfig())
    except BaseException:
        listener.close()
        raise
