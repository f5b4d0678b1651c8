"""What every CLI command shares: the two consoles, JSON output, finding lab targets, and the
options and helpers of the clients that log in (user, password, CA file, verbose; POP3, IMAP,
SMTP, FTP, SSH) and of the mail family's servers.

Results go to stdout; progress, diagnostics and errors go to stderr. Both consoles respect
``NO_COLOR``. Commands stay thin: parse, call the library, render.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from wirelab.config import LAB_ACCOUNTS, LOOPBACK, default_port
from wirelab.errors import ConfigError, ConnectError
from wirelab.lab.state import LabState
from wirelab.net.addresses import format_address, parse_port
from wirelab.net.server import close_listener, listener_socket

if TYPE_CHECKING:
    import ssl

    from wirelab.mail.store import MailStore

__all__ = [
    "CafileOption",
    "ChartOption",
    "ClientHostArgument",
    "JsonOption",
    "MailDirOption",
    "PortOption",
    "ServeHostArgument",
    "TimeoutOption",
    "UserOption",
    "bind_port",
    "cafile_option",
    "check_host",
    "check_port",
    "check_timeout",
    "client_tls_context",
    "console",
    "count_option",
    "debug_enabled",
    "err_console",
    "host_option",
    "implicit_tls_option",
    "lab_mail_host",
    "lab_password",
    "lab_state",
    "lab_target",
    "mail_target",
    "password_env",
    "password_option",
    "print_json",
    "resolve_password",
    "run_server",
    "upgrade_option",
    "user_option",
    "verbose_option",
    "wire_trace",
    "write_file",
    "write_raw_stdout",
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


def host_option(server: str) -> Any:
    """``--host``: a client's server, for verbs whose positionals are paths (``ftp get``).

    ``host_option("FTP")``: the help names the ``server`` kind; checked as a client host is.
    """
    return typer.Option(
        "--host",
        help=f"The {server} server. Default: the running lab's, else 127.0.0.1.",
        show_default=False,
        callback=check_host,
    )


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
            # SIGTERM's handler goes in before the listening line: a supervisor that stops the
            # server as soon as it reads the line must get a clean stop, not the default death.
            stop = asyncio.Event()
            with contextlib.suppress(RuntimeError, NotImplementedError):  # not the main thread
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            if announce is not None:
                line = announce(server)
            else:
                where = format_address(listener_socket(server).getsockname())
                line = f"listening at {where}" + (f" ({what})" if what else "")
            err_console.print(line, markup=False)
            await stop.wait()  # SIGTERM ends it as Ctrl-C does
        finally:
            await close_listener(server)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    last = stopped(opened[0]) if stopped is not None and opened else "stopped"
    err_console.print(last, markup=False)


# -- logging in: the options and helpers of every client that has an account -----------------
#
# POP3, IMAP, SMTP, FTP and SSH clients share these: ``-u/--user``, ``--password`` (else an
# environment variable, else the lab account's, else a prompt), ``--cafile`` and the context
# built from it, ``-v/--verbose`` for the conversation. Help texts that differ by protocol only
# take the protocol as a parameter.


def user_option(help: str = "The account to log in as.", *, show_default: bool = True) -> Any:
    """``-u/--user``: the account to log in as (the grammar's one meaning of ``-u``)."""
    return typer.Option("-u", "--user", help=help, show_default=show_default)


def password_env(topic: str) -> str:
    """The variable a topic's clients read a password from (``WIRELAB_POP_PASSWORD``)."""
    return f"WIRELAB_{topic.upper()}_PASSWORD"


def password_option(topic: str, *, help: str | None = None) -> Any:
    """``--password`` (long only: a password on a command line is visible to ``ps``).

    The default help names the topic's environment variable (:func:`password_env`) and the
    order :func:`resolve_password` follows.
    """
    text = (
        help or f"The password. Default: ${password_env(topic)}, the lab account's, else asked for."
    )
    return typer.Option("--password", help=text, show_default=False)


def cafile_option(
    help: str = "Trust the CA certificates in this PEM file (default: the lab CA while a lab "
    "runs, else the system's).",
) -> Any:
    """``--cafile FILE``: the CAs a TLS client trusts instead of the lab's or the system's."""
    return typer.Option("--cafile", help=help, dir_okay=False, show_default=False)


def verbose_option(protocol: str) -> Any:
    """``-v/--verbose``: show the ``protocol`` conversation on stderr."""
    return typer.Option("-v", "--verbose", help=f"Show the {protocol} conversation (stderr).")


def upgrade_option(flag: str, command: str, implicit: str) -> Any:
    """A client's ``--stls``/``--starttls``: the plain port, upgraded with ``command``.

    ``upgrade_option("--stls", "STLS", "POP3S")``; without it the client uses ``implicit``.
    """
    return typer.Option(
        flag, help=f"Use the plain port and upgrade with {command} (default: {implicit})."
    )


def implicit_tls_option(port_name: str) -> Any:
    """``--implicit-tls``: TLS from the first byte, on the ``port_name`` port (``"smtps"``)."""
    return typer.Option("--implicit-tls", help=f"TLS from the first byte (the {port_name} port).")


UserOption = Annotated[str, user_option()]
CafileOption = Annotated[Path | None, cafile_option()]
MailDirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The mail store (default: the lab directory's mail/).",
        file_okay=False,
        show_default=False,
    ),
]


def _trace(line: str) -> None:
    err_console.print(line, markup=False)


def wire_trace(verbose: bool) -> Callable[[str], None] | None:
    """The ``trace`` callback of a ``--verbose`` client: each line to stderr; else ``None``."""
    return _trace if verbose else None


def client_tls_context(cafile: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: ``cafile``'s CAs, else the running lab's CA, else the system's.

    Raises:
        ConfigError: ``cafile`` cannot be read or holds no certificate.
    """
    from wirelab.net.tlsctx import client_context

    if cafile is not None:
        return client_context(cafile=cafile)
    state = lab_state()
    if state is not None:
        return state.ssl_context()
    return client_context()


def lab_password(user: str) -> str | None:
    """The lab account's password for ``user`` while a lab runs, else ``None``."""
    if lab_state() is None:
        return None
    return next((a.password for a in LAB_ACCOUNTS if a.user == user), None)


def resolve_password(
    user: str,
    given: str | None,
    env: str,
    *,
    default: str | None = None,
    use_lab: bool = True,
    prompt: str | None = None,
    missing: str | None = None,
) -> str:
    """The password a client logs in with, the first of:

    ``given`` (``--password``); ``$env``; ``default`` (FTP's anonymous convention); the lab
    account's while a lab runs (unless ``use_lab`` is false); a prompt on the terminal
    (``prompt``, default ``Password for USER:``).

    Raises:
        ConfigError: none of these, and no terminal to ask on (``missing`` says so, default
            ``no password: give --password or set ENV``).
    """
    if given is not None:
        return given
    found = os.environ.get(env)
    if found is None:
        found = default
    if found is None and use_lab:
        found = lab_password(user)
    if found is not None:
        return found
    if not sys.stdin.isatty():
        raise ConfigError(missing or f"no password: give --password or set {env}")
    return getpass.getpass(prompt or f"Password for {user}: ")


# -- the mail family (chapters 13-15) ----------------------------------------------------------

#: The name a client checks the lab mail host's certificate against.
LAB_MAIL_HOST = "mail.example.com"


def mail_target(service: str, host: str | None, port: str | None, endpoint: str) -> tuple[str, int]:
    """Where a mail client connects (:func:`lab_target`); the lab's mail host by its name
    (the one its certificate carries) when the user gave no host and a lab runs."""
    target, number = lab_target(service, host, port, endpoint=endpoint)
    if host is None and lab_state() is not None:
        target = LAB_MAIL_HOST
    return target, number


def lab_mail_host(directory: Path | None) -> tuple[MailStore, ssl.SSLContext]:
    """What a mail ``serve`` command serves: the seeded store (``directory``, else the lab
    directory's ``mail/``) and a server context with the lab CA's mail host certificate."""
    from wirelab.config import private_dir, state_dir
    from wirelab.mail.seed import seed_store
    from wirelab.mail.store import MailStore
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import server_context
    from wirelab.smtp.service import MAIL_HOSTNAMES, mail_root

    base = state_dir()
    store = MailStore(private_dir(directory or mail_root(base)))
    seed_store(store, LAB_ACCOUNTS)
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base / "ca")
    return store, server_context(cert, key)


def write_file(path: Path, data: bytes) -> None:
    """Write a command's ``-o/--out`` file.

    Raises:
        ConfigError: it cannot be written (one line, no traceback).
    """
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_raw_stdout(data: bytes) -> None:
    """Write a message's bytes to stdout as they are, with Unix line ends for the terminal."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data.replace(b"\r\n", b"\n"))
    sys.stdout.flush()
