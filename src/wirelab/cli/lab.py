"""``wirelab lab up|down|status``: run the lab of real local servers."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wirelab.cli.common import JsonOption, check_host, console, err_console, print_json
from wirelab.config import LOOPBACK, private_dir, state_dir
from wirelab.errors import ConfigError, Timeout
from wirelab.lab.logfile import log_to_file
from wirelab.lab.registry import find_services
from wirelab.lab.service import LabContext
from wirelab.lab.state import LabState, pid_alive, state_path
from wirelab.lab.supervisor import DEFAULT_START_TIMEOUT, run_foreground

__all__ = ["app", "render_status"]

app = typer.Typer(help="Run the lab: real local servers for every protocol.", no_args_is_help=True)

#: Set by ``lab up --detach`` for the lab it starts: the log file to rotate.
_LOG_ENV = "WIRELAB_LAB_LOG"

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Lab directory (state file, CA, logs). Default: $WIRELAB_HOME or "
        "~/.local/state/wirelab.",
        show_default=False,
    ),
]


def _dir(option: Path | None) -> Path:
    return option if option is not None else state_dir()


def _running(directory: Path) -> LabState | None:
    try:
        return LabState.load(state_path(directory))
    except ConfigError:
        return None


def render_status(state: LabState) -> Table:
    """A table of the lab's endpoints."""
    table = Table(title=f"wirelab lab (pid {state.pid})", title_justify="left")
    for column in ("service", "host name", "address", "protocol", "tls"):
        table.add_column(column)
    for ep in state.endpoints:
        table.add_row(
            ep.name,
            ep.host,
            f"{ep.address}:{ep.port}",
            ep.protocol,
            "yes" if ep.tls else "",
        )
    for name, reason in state.unavailable.items():
        table.add_row(name, "", f"[red]unavailable:[/red] {reason}", "", "")
    return table


@app.command()
def up(
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; return once ready.")
    ] = False,
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="Start only this service (repeatable)."),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind (0.0.0.0 or :: for every interface). Loopback unless you ask.",
            callback=check_host,
        ),
    ] = LOOPBACK,
    ephemeral: Annotated[
        bool, typer.Option("--ephemeral", help="Bind port 0 everywhere (as tests do).")
    ] = False,
    memcached: Annotated[
        int, typer.Option("--memcached", min=1, max=16, help="How many memcached daemons.")
    ] = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds allowed for start-up.")
    ] = DEFAULT_START_TIMEOUT,
    directory: StateDirOption = None,
) -> None:
    """Start the lab. Stop it with Ctrl-C, or `wirelab lab down` when detached."""
    where = _lab_dir(_dir(directory))
    running = _running(where)
    if running is not None:
        raise ConfigError(f"a lab is already running (pid {running.pid}); stop it first")
    services = find_services(service)
    if not _is_loopback(host):
        shown = "every interface" if host in ("0.0.0.0", "::") else host
        err_console.print(
            f"[yellow]warning:[/yellow] the lab will listen on {shown}, not loopback: other "
            "machines can reach its servers and the lab accounts",
            highlight=False,
        )
    if detach:
        _detach(where, timeout)
        return
    logfile = os.environ.pop(_LOG_ENV, None)
    if logfile:  # the detached lab: its log rotates, readable by its owner only
        log_to_file(Path(logfile))
    lab = LabContext(
        state_dir=where, bind_host=host, ephemeral=ephemeral, options={"memcached": memcached}
    )

    def ready(state: LabState) -> None:
        console.print(render_status(state))
        err_console.print("lab ready; press Ctrl-C to stop")

    run_foreground(services, lab, state_path(where), start_timeout=timeout, on_ready=ready)
    err_console.print("lab stopped")


#: What a lab directory holds; a non-empty directory without any of these is not one.
_LAB_FILES = ("lab.json", "lab.log", "ca", "tls", "logs", "zen-inetd.log")


def _lab_dir(where: Path) -> Path:
    """Check, create and tighten the lab directory.

    A directory that already holds other things (``--state-dir /tmp``, ``--state-dir ~``) is
    refused rather than made private: ``lab up`` changes the modes of what it owns. In a lab
    directory, what an older wirelab left readable (``lab.log`` 0644, ``tls/`` 0755) becomes
    0600 or 0700; the directory itself becomes 0700.

    Raises:
        ConfigError: the directory holds something else, or cannot be made.
    """
    try:
        foreign = where.is_dir() and any(where.iterdir())
        foreign = foreign and not any((where / name).exists() for name in _LAB_FILES)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {where} as the lab directory: {exc.strerror or exc}"
        ) from exc
    if foreign:
        raise ConfigError(
            f"{where} holds other files and is not a lab directory; give a new or empty one"
        )
    private_dir(where)
    for name in _LAB_FILES:
        path = where / name
        try:
            if path.is_symlink() or not path.exists():
                continue
            path.chmod(0o700 if path.is_dir() else 0o600)
        except OSError:  # not ours: leave it, the directory itself is 0700 already
            continue
    for rotated in where.glob("*.log.[0-9]*"):
        with contextlib.suppress(OSError):
            rotated.chmod(0o600)
    return where


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _detach(where: Path, timeout: float) -> None:
    """Re-run ``lab up`` without --detach in a new session, and wait until it is ready."""
    args = [a for a in sys.argv[1:] if a not in ("--detach", "-d")]
    if "up" not in args:  # called as a library function, not from the command line
        args = ["lab", "up"]
    logfile = where / "lab.log"
    env = dict(os.environ, WIRELAB_HOME=str(where), NO_COLOR="1", **{_LOG_ENV: str(logfile)})
    fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "wirelab", *args],
            stdin=devnull,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout + 10
    path = state_path(where)
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise ConfigError(f"the lab did not start: {_last_line(logfile)} (log: {logfile})")
        try:
            state = LabState.load(path)
        except ConfigError:
            state = None
        if state is not None and state.pid == child.pid:
            _print_status(state)
            err_console.print(f"lab running in the background (pid {child.pid}, log {logfile})")
            return
        time.sleep(0.05)
    child.terminate()
    raise Timeout(f"the lab did not become ready within {timeout:g} s (log: {logfile})")


def _last_line(logfile: Path) -> str:
    try:
        lines = [ln for ln in logfile.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "unknown error"
    return lines[-1].strip() if lines else "unknown error"


@app.command()
def down(
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 15.0,
    directory: StateDirOption = None,
) -> None:
    """Stop the lab started with --detach (and every process it started)."""
    where = _dir(directory)
    path = state_path(where)
    try:
        state = LabState.load(path, check_alive=False)
    except ConfigError:
        err_console.print("no lab is running")
        return
    if pid_alive(state.pid):
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(state.pid):
            err_console.print(f"the lab (pid {state.pid}) did not stop in time; killing it")
            try:
                os.killpg(state.pid, signal.SIGKILL)  # a detached lab leads its own group
            except OSError:
                os.kill(state.pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    err_console.print(f"lab stopped (pid {state.pid})")


@app.command()
def status(json_output: JsonOption = False, directory: StateDirOption = None) -> None:
    """Show the running lab's endpoints, CA and accounts."""
    state = LabState.load(state_path(_dir(directory)))
    if json_output:
        print_json(state.to_json())
        return
    _print_status(state)


def _print_status(state: LabState) -> None:
    """The endpoint table, the CA and the accounts, on stdout, flushed.

    Flushed, because stdout into a pipe is block-buffered and stderr is not: a line on
    stderr right after would land inside an unfinished stdout line
    ("accounts: brandonlab running in the background") when both go to one file.
    """
    console.print(render_status(state))
    console.print(f"CA: {state.ca}")
    console.print("accounts: " + ", ".join(a.user for a in state.accounts))
    console.file.flush()
