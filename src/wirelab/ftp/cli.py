"""``wirelab ftp client|ls|get|put|mirror|serve`` (chapter 17).

``client`` names its server the grammar's way (optional ``HOST``, ``-p``). The transfer verbs
take remote and local paths as their positionals, so they name the server with ``--host``
(as ``lab up`` does) and ``-p``; with neither they use the running lab's FTP host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    cafile_option,
    client_tls_context,
    console,
    err_console,
    host_option,
    lab_target,
    password_env,
    password_option,
    print_json,
    resolve_password,
    run_server,
    user_option,
)
from wirelab.config import LOOPBACK, default_port, state_dir
from wirelab.net.addresses import parse_port

__all__ = ["app"]

app = typer.Typer(
    name="ftp",
    help="Chapter 17: FTP and FTPS: listings, ASCII and binary transfers, uploads, mirrors.",
    no_args_is_help=True,
)

HostOption = Annotated[str | None, host_option("FTP")]
UserOption = Annotated[str, user_option("Account name ('anonymous' logs in anonymously).")]
PasswordOption = Annotated[
    str | None,
    password_option(
        "ftp",
        help=f"The account's password. Default: ${password_env('ftp')}, the lab account's, "
        "else asked on the terminal.",
    ),
]
TLSOption = Annotated[
    str,
    typer.Option(
        "--tls",
        help="none (the book's plain FTP), explicit (AUTH TLS) or implicit (TLS port).",
    ),
]
CAFileOption = Annotated[
    Path | None,
    cafile_option(
        "CA certificates to trust for FTPS. Default: the running lab's CA, else the system's."
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace a file that exists.")]

TLS_MODES = ("none", "explicit", "implicit")


def _target(
    host: str | None,
    port: str | None,
    user: str,
    password: str | None,
    tls: str,
    cafile: Path | None,
    timeout: float,
) -> Any:
    from wirelab.ftp.client import FTPTarget

    if tls not in TLS_MODES:
        raise typer.BadParameter(
            f"{tls!r} is not one of {', '.join(TLS_MODES)}", param_hint="--tls"
        )
    endpoint = "ftps" if tls == "implicit" else "ftp"
    address, number = lab_target("ftp", host, port, endpoint=endpoint)
    context = client_tls_context(cafile) if tls != "none" else None
    env = password_env("ftp")
    password = resolve_password(
        user,
        password,
        env,
        # the anonymous login convention: an e-mail address for a password
        default="anonymous@" if user in ("anonymous", "ftp") else None,
        use_lab=host is None,  # a lab account's password goes to the lab's server only
        prompt=f"Enter password for {user} on {address}: ",
        missing=f"no password for {user} (use --password or ${env})",
    )
    server_name = host or address
    return FTPTarget(server_name, number, user, password, tls, context, timeout)  # type: ignore[arg-type]


class _Bar:
    """A progress line on stderr that updates in place (and knows empty files)."""

    def __init__(self, what: str, quiet: bool) -> None:
        self.what, self.quiet, self.shown = what, quiet or not err_console.is_terminal, False

    def __call__(self, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if total:
            line = f"\r{self.what}: {done} of {total} bytes ({100 * done / total:.1f}%)"
        else:
            line = f"\r{self.what}: {done} bytes"
        err_console.file.write(line)
        err_console.file.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            err_console.file.write("\n")


@app.command()
def client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "anonymous",
    password: PasswordOption = None,
    tls: TLSOption = "none",
    cafile: CAFileOption = None,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Connect, show the welcome banner, log in and show the working directory (connect.py)."""
    from wirelab.ftp.client import welcome

    target = _target(host, port, user, password, tls, cafile, timeout)
    banner, cwd = welcome(target)
    if json_output:
        print_json({"server": target.where, "welcome": banner, "cwd": cwd, "tls": tls})
        return
    console.print(f"Welcome: {banner}", markup=False)
    console.print(f"Current working directory: {cwd}", markup=False)


@app.command()
def ls(
    path: Annotated[str, typer.Argument(help="The remote directory.")] = "",
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = "anonymous",
    password: PasswordOption = None,
    tls: TLSOption = "none",
    cafile: CAFileOption = None,
    long: Annotated[bool, typer.Option("--long", help="LIST's long lines (dir.py).")] = False,
    facts: Annotated[bool, typer.Option("--facts", help="MLSD facts: type and size.")] = False,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """List a remote directory: NLST names, sorted (nlst.py), or --long / --facts."""
    from wirelab.ftp.client import list_entries, list_long, list_names, open_session

    target = _target(host, port, user, password, tls, cafile, timeout)
    with open_session(target) as ftp:
        if facts:
            entries = list_entries(ftp, path or ftp.pwd())
            if json_output:
                print_json([{"name": e.name, "kind": e.kind, "size": e.size} for e in entries])
                return
            for e in entries:
                size = "" if e.size is None else str(e.size)
                console.print(f"{e.kind:<5} {size:>10} {e.name}", markup=False)
            return
        lines = list_long(ftp, path) if long else sorted(list_names(ftp, path))
    if json_output:
        print_json(lines)
        return
    console.print(f"{len(lines)} entries:", markup=False)
    for line in lines:
        console.print(line, markup=False)


@app.command()
def get(
    remote: Annotated[str, typer.Argument(help="The remote file.")],
    local: Annotated[
        Path | None, typer.Argument(help="Where to write it. Default: its name, here.")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = "anonymous",
    password: PasswordOption = None,
    tls: TLSOption = "none",
    cafile: CAFileOption = None,
    ascii_mode: Annotated[
        bool, typer.Option("--ascii", help="ASCII mode (TYPE A): text with local line ends.")
    ] = False,
    force: ForceOption = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue NAME.part from where it stopped (REST).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress line.")] = False,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Download a file: binary with a progress line (advbinarydl.py), or --ascii (asciidl.py)."""
    from wirelab.ftp.client import default_download_name, download, download_ascii, open_session

    if ascii_mode and resume:
        raise typer.BadParameter("--resume works in binary mode only", param_hint="--resume")
    destination = local or default_download_name(remote)
    if destination.is_dir():
        destination = destination / default_download_name(remote).name
    target = _target(host, port, user, password, tls, cafile, timeout)
    bar = _Bar(f"Received {remote}", quiet or json_output)
    with open_session(target) as ftp:
        try:
            if ascii_mode:
                result = download_ascii(ftp, remote, destination, force=force)
            else:
                result = download(
                    ftp, remote, destination, force=force, resume=resume, progress=bar
                )
        finally:
            bar.end()
    if json_output:
        print_json(result.to_json())
        return
    resumed = f" (resumed at {result.resumed_from})" if result.resumed_from else ""
    console.print(f"{result.local}: {result.bytes} bytes ({result.mode}){resumed}", markup=False)


@app.command()
def put(
    local: Annotated[Path, typer.Argument(help="The local file.", dir_okay=False)],
    remote: Annotated[
        str | None, typer.Argument(help="The remote name. Default: the file's name.")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    tls: TLSOption = "none",
    cafile: CAFileOption = None,
    simple: Annotated[
        bool, typer.Option("--simple", help="storbinary in one call (binaryul.py), no progress.")
    ] = False,
    force: ForceOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress line.")] = False,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Upload a file in chunks with a progress line (advbinaryul.py), or --simple."""
    from wirelab.ftp.client import open_session, upload

    target = _target(host, port, user, password, tls, cafile, timeout)
    bar = _Bar(f"Sent {local.name}", quiet or json_output)
    with open_session(target) as ftp:
        try:
            result = upload(ftp, local, remote, force=force, chunked=not simple, progress=bar)
        finally:
            bar.end()
    if json_output:
        print_json(result.to_json())
        return
    console.print(f"{result.remote}: {result.bytes} bytes sent", markup=False)


@app.command()
def mirror(
    source: Annotated[str, typer.Argument(help="Remote directory (or local, with --up).")],
    destination: Annotated[str, typer.Argument(help="Local directory (or remote, with --up).")],
    up: Annotated[bool, typer.Option("--up", help="Upload a local tree instead.")] = False,
    host: HostOption = None,
    port: PortOption = None,
    user: UserOption = "anonymous",
    password: PasswordOption = None,
    tls: TLSOption = "none",
    cafile: CAFileOption = None,
    force: ForceOption = False,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Copy a directory tree down (or --up), never following symbolic links (recursedl.py)."""
    from wirelab.ftp.client import mirror_down, mirror_up, open_session

    target = _target(host, port, user, password, tls, cafile, timeout)
    with open_session(target) as ftp:
        if up:
            report = mirror_up(ftp, Path(source), destination, force=force)
        else:
            report = mirror_down(ftp, source, Path(destination), force=force)
    if json_output:
        print_json(report.to_json())
        return
    console.print(
        f"{report.files} files, {report.bytes} bytes, {report.directories} directories",
        markup=False,
    )
    for item in report.skipped:
        console.print(f"skipped {item}", markup=False)


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    implicit: Annotated[
        bool, typer.Option("--implicit", help="Implicit FTPS (TLS from the first byte).")
    ] = False,
    require_tls: Annotated[
        bool, typer.Option("--require-tls", help="Refuse logins and data without TLS.")
    ] = False,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", min=0.1, help="Seconds a quiet client may stay.")
    ] = 300.0,
) -> None:
    """Serve the lab FTP host: the book's anonymous trees, uploads for lab accounts."""
    import dataclasses

    from wirelab.ftp.server import open_ftp_server
    from wirelab.ftp.service import lab_ftp_settings
    from wirelab.lab.service import LabContext

    endpoint = "ftps" if implicit else "ftp"
    number = parse_port(port, "tcp") if port is not None else default_port("ftp", endpoint)
    lab = LabContext(state_dir=state_dir())
    settings = dataclasses.replace(
        lab_ftp_settings(lab, implicit_tls=implicit),
        require_tls=require_tls,
        idle_timeout=idle_timeout,
    )
    what = "implicit FTPS" if implicit else "FTP, explicit FTPS"
    run_server(lambda: open_ftp_server(host, number, settings), what, loggers=("wirelab.ftp",))
