"""What every CLI command shares: the two consoles, JSON output, and finding lab targets.

Results go to stdout; progress, diagnostics and errors go to stderr. Both consoles respect
``NO_COLOR``. Commands stay thin: parse, call the library, render.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console

from wirelab.config import LOOPBACK, default_port
from wirelab.errors import ConfigError
from wirelab.lab.state import LabState
from wirelab.net.addresses import parse_port

__all__ = [
    "JsonOption",
    "PortOption",
    "check_port",
    "console",
    "debug_enabled",
    "err_console",
    "lab_state",
    "lab_target",
    "print_json",
]

console = Console(highlight=False, soft_wrap=True)
#: soft_wrap: an error is one line even in a pipe or a log file (rich would break it at 80).
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def check_port(value: str | None) -> str | None:
    """Option callback: a port number out of range is a usage error (exit 2).

    Service names (``domain``) are looked up later, for the right protocol.
    """
    if value is not None and value.strip().isdigit() and not 0 <= int(value) <= 65535:
        raise typer.BadParameter(f"port {int(value)} is out of range 0-65535")
    return value


JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document for scripts.")]
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
