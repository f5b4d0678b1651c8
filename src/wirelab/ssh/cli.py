"""``wirelab ssh shell|client|run|channels|hostkey|serve`` and ``wirelab sftp ls|get|put`` (ch. 16).

Every client checks the server's host key against a known_hosts file: ``--known-hosts``,
else the running lab's pin, else ``~/.ssh/known_hosts``. It logs in with the running lab's
key for a lab account, else with ``--password`` / ``$WIRELAB_SSH_PASSWORD``, else it asks.
The SFTP verbs take paths as positionals, so they name the server with ``--host`` and ``-p``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    bind_port,
    console,
    err_console,
    host_option,
    lab_state,
    lab_target,
    password_env,
    password_option,
    print_json,
    resolve_password,
    run_server,
    user_option,
)
from wirelab.config import LAB_ACCOUNTS

__all__ = ["app", "apps", "sftp_app"]

app = typer.Typer(
    name="ssh",
    help="Chapter 16: SSH with a pinned host key: a shell, commands on channels, the lab server.",
    no_args_is_help=True,
)
sftp_app = typer.Typer(
    name="sftp",
    help="Chapter 16: SFTP: list, download and upload (resumable) with a progress bar.",
    no_args_is_help=True,
)
apps = [app, sftp_app]

UserOption = Annotated[
    str | None,
    user_option("Account name. Default: the lab account (brandon).", show_default=False),
]
PasswordOption = Annotated[
    str | None,
    password_option(
        "ssh",
        help=f"A password to offer. Default: ${password_env('ssh')}; with a running lab, its key.",
    ),
]
KeyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--key", help="A private key file to offer (repeatable).", exists=True, dir_okay=False
    ),
]
KnownHostsOption = Annotated[
    Path | None,
    typer.Option(
        "--known-hosts",
        help="The known_hosts file the host key must be in. Default: the lab's pin, else "
        "~/.ssh/known_hosts.",
        dir_okay=False,
        show_default=False,
    ),
]
HostOption = Annotated[str | None, host_option("SSH")]


def _target(
    host: str | None,
    port: str | None,
    user: str | None,
    password: str | None,
    keys: list[Path] | None,
    known_hosts: Path | None,
    timeout: float,
) -> Any:
    from wirelab.ssh.client import SSHTarget, default_known_hosts
    from wirelab.ssh.keys import client_key_file, known_hosts_file

    server, number = lab_target("ssh", host, port)
    state = lab_state()
    user = user or LAB_ACCOUNTS[0].user
    offered = list(keys or [])
    if state is not None:
        lab_dir = Path(state.directory)
        known_hosts = known_hosts or known_hosts_file(lab_dir)
        lab_key = client_key_file(lab_dir, user)
        if not offered and lab_key.exists():
            offered.append(lab_key)
    known_hosts = known_hosts or default_known_hosts()
    password = password or os.environ.get(password_env("ssh"))
    if not offered:  # a password is the only way in: ask for one (never the lab's: it has a key)
        password = resolve_password(
            user,
            password,
            password_env("ssh"),
            use_lab=False,
            prompt=f"Password for {user}@{server}: ",
            missing=f"no key and no password for {user} (use --key or --password)",
        )
    return SSHTarget(server, number, user, password, tuple(offered), known_hosts, timeout)


@app.command("client")
def client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "-m",
            "--message",
            help="A line to type (repeatable). Default: the "
            "book's 'echo Hello, world' then 'exit'.",
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Type lines into a PTY shell and show the raw transcript, as ssh_simple.py does (F95)."""
    from wirelab.ssh.client import BOOK_SHELL_LINES, connect, shell_transcript

    target = _target(host, port, user, password, key, known_hosts, timeout)
    lines = list(message or BOOK_SHELL_LINES)
    if lines[-1] != "exit":
        lines.append("exit")

    async def go() -> str:
        async with connect(target) as conn:
            return await shell_transcript(conn, lines, timeout)

    transcript = asyncio.run(go())
    if json_out:
        print_json({"lines": lines, "transcript": transcript})
    else:
        console.print(repr(transcript), markup=False, highlight=False)


@app.command("shell")
def shell(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """An interactive shell on a remote PTY, as `ssh HOST` gives (F95): needs a terminal.

    The terminal is in raw mode until the session ends (then restored); window resizes are
    passed on. Exits with the remote shell's exit status.
    """
    from wirelab.ssh.client import connect
    from wirelab.ssh.terminal import interactive_shell

    if not os.isatty(0):  # a usage error (exit 2): this verb is for a person at a terminal
        raise typer.BadParameter(
            "an interactive shell needs a terminal on stdin "
            "(for a script, use `wirelab ssh run` or `wirelab ssh client`)",
            param_hint="stdin",
        )
    target = _target(host, port, user, password, key, known_hosts, timeout)

    async def go() -> int:
        async with connect(target) as conn:
            return await interactive_shell(conn)

    status = asyncio.run(go())
    if status:
        raise typer.Exit(status)


@app.command("run")
def run(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "-m",
            "--message",
            help="A command to run on its own channel (repeatable). Default: the book's three.",
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Run commands, one channel each, showing stdout, stderr and exit status (F96).

    Exits 1 when a command's exit status is not 0.
    """
    from wirelab.ssh.client import BOOK_COMMANDS, connect, run_commands

    target = _target(host, port, user, password, key, known_hosts, timeout)

    async def go() -> Any:
        async with connect(target) as conn:
            return await run_commands(conn, list(message or BOOK_COMMANDS), timeout)

    results = asyncio.run(go())
    if json_out:
        print_json([r.to_json() for r in results])
    else:
        for r in results:
            console.print(f"command: {r.command}", markup=False, highlight=False)
            console.print(f"  stdout: {r.stdout!r}", markup=False, highlight=False)
            if r.stderr:
                console.print(f"  stderr: {r.stderr!r}", markup=False, highlight=False)
            console.print(f"  exit status: {r.exit_status}", markup=False, highlight=False)
    if any(r.exit_status != 0 for r in results):
        raise typer.Exit(1)


@app.command("channels")
def channels(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "-m",
            "--message",
            help="A command for one channel (repeatable). "
            "Default: two tick commands whose lines interleave.",
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Run commands at once on channels of one connection; lines as they arrive (F97)."""
    from wirelab.ssh.client import CONCURRENT_COMMANDS, connect, run_concurrently

    target = _target(host, port, user, password, key, known_hosts, timeout)
    commands = list(message or CONCURRENT_COMMANDS)

    async def go() -> Any:
        async with connect(target) as conn:
            return await run_concurrently(conn, commands, timeout)

    arrived = asyncio.run(go())
    if json_out:
        print_json(
            {
                "commands": commands,
                "lines": [{"channel": i, "line": t, "seconds": round(s, 3)} for i, t, s in arrived],
            }
        )
        return
    for index, line, seconds in arrived:
        console.print(f"{seconds:6.2f} s  channel {index}: {line}", markup=False, highlight=False)


@app.command("hostkey")
def hostkey(
    host: ClientHostArgument = None,
    port: PortOption = None,
    known_hosts: KnownHostsOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Show the server's host key fingerprint and whether it matches the pin (no login)."""
    import asyncssh

    from wirelab.ssh.client import default_known_hosts, host_key_fingerprint
    from wirelab.ssh.keys import known_hosts_file

    server, number = lab_target("ssh", host, port)
    state = lab_state()
    if known_hosts is None:
        known_hosts = (
            known_hosts_file(Path(state.directory)) if state is not None else default_known_hosts()
        )
    fingerprint = asyncio.run(host_key_fingerprint(server, number, timeout))
    pinned = False
    if known_hosts.exists():
        trusted = asyncssh.read_known_hosts(str(known_hosts))
        from wirelab.net.addresses import lab_address

        address = lab_address(server) or server
        keys = trusted.match(server, address, number)[0]
        pinned = any(
            f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" == fingerprint for k in keys
        )
    if json_out:
        print_json(
            {
                "host": server,
                "port": number,
                "fingerprint": fingerprint,
                "pinned": pinned,
                "known_hosts": str(known_hosts),
            }
        )
        return
    state_text = "pinned" if pinned else "NOT pinned"
    console.print(
        f"{server}:{number} {fingerprint} ({state_text} in {known_hosts})",
        markup=False,
        highlight=False,
    )


@app.command("serve")
def serve(
    host: ServeHostArgument = "127.0.0.1",
    port: PortOption = None,
) -> None:
    """Run the lab SSH server (minimal shell, exec, SFTP in the lab homes) until Ctrl-C."""
    from wirelab.config import state_dir
    from wirelab.lab.service import LabContext
    from wirelab.ssh.keys import write_known_hosts
    from wirelab.ssh.server import SSHListener, open_ssh_server
    from wirelab.ssh.service import lab_ssh_settings

    number = bind_port(port, "ssh", "ssh")
    lab = LabContext(state_dir=state_dir())

    async def start() -> SSHListener:
        settings = await asyncio.to_thread(lab_ssh_settings, lab)
        listener = await open_ssh_server(host, number, settings)
        path = write_known_hosts(lab.state_dir, settings.host_key, listener.port)
        err_console.print(f"host key pinned in {path}", markup=False, highlight=False)
        return listener

    run_server(start, "ssh", loggers=["wirelab.ssh"])


# -- sftp -------------------------------------------------------------------------------------


def _progress_bar(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        disable=not (enabled and err_console.is_terminal),
    )


@sftp_app.command("ls")
def sftp_ls(
    path: Annotated[str, typer.Argument(help="The remote directory.")] = ".",
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """List a remote directory."""
    from wirelab.ssh.client import connect, sftp_list

    target = _target(host, port, user, password, key, known_hosts, timeout)

    async def go() -> Any:
        async with connect(target) as conn:
            return await sftp_list(conn, path)

    rows = asyncio.run(go())
    if json_out:
        print_json(rows)
        return
    for row in rows:
        name = row["name"] + ("/" if row["dir"] else "")
        console.print(f"{row['size']:>10}  {name}", markup=False, highlight=False)


@sftp_app.command("get")
def sftp_get_cmd(
    remote: Annotated[list[str], typer.Argument(help="Remote files to download.")],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Directory to write into (each file by its base name).",
            file_okay=False,
        ),
    ] = Path("."),
    resume: Annotated[bool, typer.Option("--resume", help="Complete shorter local files.")] = False,
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Download files (never to the remote path itself, unlike sftp_get.py) (F98)."""
    from wirelab.errors import ConfigError
    from wirelab.ssh.client import connect, sftp_get

    target = _target(host, port, user, password, key, known_hosts, timeout)
    if not out.is_dir():
        raise ConfigError(f"{out} is not a directory")
    report: list[dict[str, Any]] = []

    async def go() -> None:
        async with connect(target) as conn:
            with _progress_bar(not json_out) as bar:
                for name in remote:
                    base = Path(name).name
                    if not base or base in (".", ".."):
                        raise ConfigError(f"{name!r} names no file")
                    local = out / base
                    task = bar.add_task(base, total=None)

                    def tick(_: str, done: int, total: int, task: Any = task) -> None:
                        bar.update(task, completed=done, total=total or 1)

                    written = await sftp_get(conn, name, local, resume=resume, progress=tick)
                    if local.stat().st_size == 0:
                        bar.update(task, completed=1, total=1)
                    report.append(
                        {
                            "remote": name,
                            "local": str(local),
                            "written": written,
                            "size": local.stat().st_size,
                        }
                    )

    asyncio.run(go())
    if json_out:
        print_json(report)
    else:
        for row in report:
            console.print(
                f"{row['remote']} -> {row['local']} ({row['size']} bytes, "
                f"{row['written']} this time)",
                markup=False,
                highlight=False,
            )


@sftp_app.command("put")
def sftp_put_cmd(
    local: Annotated[Path, typer.Argument(help="The local file.", exists=True, dir_okay=False)],
    remote: Annotated[
        str | None, typer.Argument(help="Remote path. Default: its base name.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Complete a shorter remote file.")
    ] = False,
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    key: KeyOption = None,
    known_hosts: KnownHostsOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Upload a file (F98's other direction)."""
    from wirelab.ssh.client import connect, sftp_put

    target = _target(host, port, user, password, key, known_hosts, timeout)
    destination = remote or local.name

    async def go() -> int:
        async with connect(target) as conn:
            with _progress_bar(not json_out) as bar:
                task = bar.add_task(local.name, total=None)

                def tick(_: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total or 1)

                return await sftp_put(conn, local, destination, resume=resume, progress=tick)

    written = asyncio.run(go())
    size = local.stat().st_size
    if json_out:
        print_json({"local": str(local), "remote": destination, "written": written, "size": size})
    else:
        console.print(
            f"{local} -> {destination} ({size} bytes, {written} this time)",
            markup=False,
            highlight=False,
        )
