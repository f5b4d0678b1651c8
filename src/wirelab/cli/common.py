"""What every CLI command shares: the two consoles, JSON output, and finding lab targets.

Results go to stdout; progress, diagnostics and errors go to stderr. Both consoles respect
``NO_COLOR``. Commands stay thin: parse, call the library, render.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from wirelab.config import LOOPBACK, default_port
from wirelab.errors import ConfigError, ConnectError
from wirelab.lab.state import LabState
from wirelab.net.addresses import format_address, parse_port
from wirelab.net.server import close_listener, listener_socket

__all__ = [
    "ChartOption",
    "ClientHostArgument",
    "JsonOption",
    "PortOption",
    "ServeHostArgument",
    "TimeoutOption",
    "bind_port",
    "check_host",
    "check_port",
    "check_timeout",
    "console",
    "count_option",
    "debug_enabled",
    "err_console",
    "lab_state",
    "lab_target",
    "print_json",
    "run_server",
]

T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)
#: soft_wrap: an error is one line even in a pipe or a log file (rich would break it at 80).
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def check_port(value: str | None) -> str | None:
    """Option callback: a port number out of range is a usage error (exit 2).

    Service names (``domain``) are looked up later, for the right protocol.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        raise typer.BadParameter("the port is empty")
    if text.lstrip("+-").isdigit() and (len(text) > 8 or not 0 <= int(text) <= 65535):
        raise typer.BadParameter(f"port {text[:20]} is out of range 0-65535")
    return value


#: The longest host name DNS can carry (RFC 1035 section 2.3.4: 255 octets on the wire).
MAX_HOST_CHARS = 253


def check_host(value: str | None) -> str | None:
    """Argument callback: an empty or impossible host is a usage error (exit 2).

    An empty string would make ``bind()`` listen on every interface and ``connect()`` go to
    0.0.0.0, silently; say ``0.0.0.0`` or ``::`` to mean every interface.
    """
    if value is None:
        return None
    if not value.strip():
        raise typer.BadParameter("the host is empty (use 0.0.0.0 or :: for every interface)")
    if len(value) > MAX_HOST_CHARS or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        shown = value if len(value) <= 60 else value[:40] + "..."
        raise typer.BadParameter(f"{shown!r} is not a host name or address")
    return value


def check_timeout(value: float | None) -> float | None:
    """Option callback: a timeout is a finite number of seconds above zero (exit 2 if not)."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise typer.BadParameter(f"{value} is not a number of seconds above zero")
    return value


def count_option(help: str, *, minimum: int = 1) -> Any:
    """``-n/--count``: how many of something (the grammar's one meaning of ``-n``)."""
    return typer.Option("-n", "--count", help=help, min=minimum)


JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]
TimeoutOption = Annotated[
    float,
    typer.Option("-t", "--timeout", help="Seconds to wait.", callback=check_timeout),
]
ClientHostArgument = Annotated[
    str | None,
    typer.Argument(
        help="The server's host name or address. Default: the running lab's, else 127.0.0.1.",
        show_default=False,
        callback=check_host,
    ),
]
ServeHostArgument = Annotated[
    str,
    typer.Argument(
        help="The address to bind (0.0.0.0 or :: for every interface).", callback=check_host
    ),
]
ChartOption = Annotated[
    Path | None,
    typer.Option("--chart", help="Write a PNG chart to this file.", dir_okay=False),
]
PortOption = Annotated[
    str | None,
    typer.Option(
        "-p",
        "--port",
        help="Port number or service name (e.g. 1060, domain). Default: the lab's.",
        show_default=False,
        callback=check_port,
    ),
]


def debug_enabled() -> bool:
    """True when the user asked for ``--debug`` (anywhere) or set ``WIRELAB_DEBUG=1``."""
    return os.environ.get("WIRELAB_DEBUG", "") not in ("", "0")


def print_json(document: Any) -> None:
    """Print ``document`` as JSON on stdout (no colour, no wrapping)."""
    print(json.dumps(document, indent=2, sort_keys=False))


def lab_state() -> LabState | None:
    """The running lab's state, or ``None`` when no lab runs."""
    try:
        return LabState.load()
    except ConfigError:
        return None


def bind_port(port: str | None, service: str, endpoint: str, proto: str = "tcp") -> int:
    """The port a ``serve`` command binds: the user's (number or service name), else the
    documented default of the lab's ``service``/``endpoint`` (``bind_port(None, "tcp",
    "sixteen")`` is 1060).

    Raises:
        ConfigError: an unknown service name.
    """
    return parse_port(port, proto) if port is not None else default_port(service, endpoint)


def lab_target(
    service: str,
    host: str | None,
    port: str | None,
    *,
    endpoint: str | None = None,
    proto: str = "tcp",
) -> tuple[str, int]:
    """Decide where a client connects: what the user gave, else the running lab, else defaults.

    Args:
        service: the lab service that plays this server (``"udp"``).
        host: the host the user gave, if any.
        port: the port (number or service name) the user gave, if any.
        endpoint: the service's endpoint, when it has several.
        proto: ``"tcp"`` or ``"udp"``, for service-name ports.
    """
    if host is not None and port is not None:
        return host, parse_port(port, proto)
    state = lab_state()
    if state is not None:
        try:
            ep = state.endpoint(service, endpoint)
        except ConfigError:
            ep = None
        if ep is not None:
            return host or ep.address, parse_port(port, proto) if port is not None else ep.port
    fallback = default_port(service, endpoint or service)
    return host or LOOPBACK, parse_port(port, proto) if port is not None else fallback


def run_server(
    start: Callable[[], Awaitable[T]],
    what: str = "",
    *,
    loggers: Sequence[str] = (),
    announce: Callable[[T], str] | None = None,
    stopped: Callable[[T], str] | None = None,
) -> None:
    """Run a server for a ``serve`` command until Ctrl-C (or SIGTERM), then close it cleanly.

    ``start`` opens the server inside the event loop (a :class:`ConnectionServer`, an asyncio
    server or transport, a ``(transport, protocol)`` pair: anything
    :func:`~wirelab.net.server.close_listener` closes). Once it listens, one line goes to
    stderr: ``listening at HOST:PORT (what)``; Ctrl-C prints ``stopped`` and returns (exit 0).
    A bind failure is a one-line error from the seam (exit 1), never a traceback.

    Args:
        start: opens the server (``lambda: open_sixteen_server(host, port)``).
        what: a few words for the listening line (``"sixteen exchange"``).
        loggers: loggers to show at INFO (the server's per-connection lines).
        announce: the listening line instead of the default one.
        stopped: the last line instead of ``stopped`` (``"stopped after 3 clients"``).

    Raises:
        ConnectError: the server could not bind or listen.
    """
    for name in loggers:
        logging.getLogger(name).setLevel(logging.INFO)
    opened: list[T] = []

    async def main() -> None:
        try:
            server = await start()
        except OSError as exc:  # a seam that did not map it: still one line
            raise ConnectError(f"cannot start the server: {exc.strerror or exc}") from exc
        opened.append(server)
        try:
            if announce is not None:
                line = announce(server)
            else:
                where = format_address(listener_socket(server).getsockname())
                line = f"listening at {where}" + (f" ({what})" if what else "")
            err_console.print(line, markup=False)
            stop = asyncio.Event()
            with contextlib.suppress(RuntimeError, NotImplementedError):  # not the main thread
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()  # SIGTERM ends it as Ctrl-C does
        finally:
            await close_listener(server)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    last = stopped(opened[0]) if stopped is not None and opened else "stopped"
    err_console.print(last, markup=False)
