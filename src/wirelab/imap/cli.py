"""``wirelab imap folders|info|summary|fetch|serve`` (chapter 15).

Every client command logs in over TLS (implicit, the book's way, or ``--starttls`` on the
plain port), selects read-only and fetches with ``BODY.PEEK``: reading never marks a message
``\\Seen``. The password comes from ``--password``, else ``$WIRELAB_IMAP_PASSWORD``, else the
lab account's (while a lab runs), else a prompt.
"""

from __future__ import annotations

import getpass
import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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
    count_option,
    lab_state,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LAB_ACCOUNTS, LOOPBACK
from wirelab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    name="imap",
    help="Chapter 15: read folders and messages over IMAP without marking them seen, serve.",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option("-u", "--user", help="The account to log in as.")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="The password. Default: $WIRELAB_IMAP_PASSWORD, the lab account's, else asked for.",
        show_default=False,
    ),
]
StartTLSOption = Annotated[
    bool,
    typer.Option(
        "--starttls", help="Use the plain port and upgrade with STARTTLS (default: IMAPS)."
    ),
]
CaFileOption = Annotated[
    Path | None,
    typer.Option(
        "--cafile",
        help="Trust the CA certificates in this PEM file (default: the lab CA while a lab "
        "runs, else the system's).",
        dir_okay=False,
        show_default=False,
    ),
]
FolderOption = Annotated[str, typer.Option("--folder", help="The folder to read.")]


def _context(cafile: Path | None) -> ssl.SSLContext:
    from wirelab.net.tlsctx import client_context

    if cafile is not None:
        try:
            return client_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use {cafile} as a CA file: {exc}") from exc
    state = lab_state()
    if state is not None:
        return state.ssl_context()
    return client_context()


def _password(user: str, password: str | None) -> str:
    if password is not None:
        return password
    env = os.environ.get("WIRELAB_IMAP_PASSWORD")
    if env is not None:
        return env
    if lab_state() is not None:
        lab = {a.user: a.password for a in LAB_ACCOUNTS}
        if user in lab:
            return lab[user]
    if not sys.stdin.isatty():
        raise ConfigError("no password: give --password or set WIRELAB_IMAP_PASSWORD")
    return getpass.getpass(f"Password for {user}: ")


@contextmanager
def _session(
    host: str | None,
    port: str | None,
    user: str,
    password: str | None,
    starttls: bool,
    cafile: Path | None,
    timeout: float,
) -> Iterator[Any]:
    from wirelab.imap.client import connect, seam

    target, number = lab_target("imap", host, port, endpoint="imap" if starttls else "imaps")
    if host is None and lab_state() is not None:
        target = "mail.example.com"
    client = connect(
        target,
        number,
        user,
        _password(user, password),
        context=_context(cafile),
        implicit_tls=not starttls,
        timeout=timeout,
    )
    try:
        yield client
    finally:
        with seam("LOGOUT"):
            try:
                client.logout()
            except Exception:
                client.shutdown()


@app.command("folders")
def folders_(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CaFileOption = None,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """List the folders: flags, delimiter and name (the book's open_imap.py)."""
    from wirelab.imap.client import folders

    with _session(host, port, user, password, starttls, cafile, timeout) as client:
        capabilities = sorted(c.decode("ascii", "replace") for c in client.capabilities())
        listing = folders(client)
    if json_out:
        print_json({"capabilities": capabilities, "folders": listing})
        return
    console.print("Capabilities: " + " ".join(capabilities), markup=False)
    console.print("Listing mailboxes:", markup=False)
    for entry in listing:
        flags = ", ".join(entry["flags"])
        console.print(f"  {entry['name']:30}  {flags}  ({entry['delimiter']})", markup=False)


@app.command()
def info(
    host: ClientHostArgument = None,
    port: PortOption = None,
    folder: FolderOption = "INBOX",
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CaFileOption = None,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Select a folder read-only and show its metadata (the book's folder_info.py)."""
    from wirelab.imap.client import folder_info

    with _session(host, port, user, password, starttls, cafile, timeout) as client:
        data = folder_info(client, folder)
    if json_out:
        print_json(data)
        return
    for key in sorted(data):
        console.print(f"{key}: {data[key]!r}", markup=False)


def _tree_lines(part: Any, depth: int = 0) -> list[str]:
    label = part.number or "TEXT"
    extra = f" {part.filename!r}" if part.filename else ""
    size = f" {part.size} bytes" if part.size is not None else ""
    lines = [f"{'  ' * depth}{label}  {part.type}{size}{extra}"]
    for child in part.parts:
        lines += _tree_lines(child, depth + 1)
    return lines


@app.command()
def summary(
    host: ClientHostArgument = None,
    port: PortOption = None,
    folder: FolderOption = "INBOX",
    count: Annotated[int | None, count_option("Only the last N messages.")] = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CaFileOption = None,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """UID, date, size, flags, sender, subject and parts of each message, none marked seen.

    Only headers and BODYSTRUCTURE are fetched, never a body (the book's folder_summary.py).
    """
    from wirelab.imap.client import summaries

    with _session(host, port, user, password, starttls, cafile, timeout) as client:
        found = summaries(client, folder, limit=count)
    if json_out:
        print_json([m.to_json() for m in found])
        return
    for message in found:
        flags = " ".join(message.flags) or "-"
        console.print(
            f"{message.uid:>5} {message.date[:19]} {message.size:>8} {flags:12} "
            f"{message.sender[:28]:28} {message.subject}",
            markup=False,
        )
        for line in _tree_lines(message.parts, 1):
            console.print(f"      {line}", markup=False)


@app.command()
def fetch(
    uid: Annotated[int, typer.Argument(help="The message's UID.", min=1)],
    host: ClientHostArgument = None,
    port: PortOption = None,
    part: Annotated[
        str | None,
        typer.Option(
            "--part",
            help="Only this part (1, 2.1 ... as summary shows); default the whole message.",
            show_default=False,
        ),
    ] = None,
    folder: FolderOption = "INBOX",
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the bytes here.", dir_okay=False),
    ] = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CaFileOption = None,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Download a message, or only one of its parts, without marking it seen."""
    from wirelab.imap.client import fetch_message, fetch_part

    if part is not None and not all(p.isdigit() and p != "0" for p in part.split(".")):
        raise typer.BadParameter(f"{part!r} is not a part number like 1 or 2.1")
    with _session(host, port, user, password, starttls, cafile, timeout) as client:
        if part is None:
            data = fetch_message(client, folder, uid)
            kind = "message/rfc822"
        else:
            found, data = fetch_part(client, folder, uid, part)
            kind = found.type
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from exc
    if json_out:
        text = data.decode("utf-8", "replace") if kind.startswith(("text/", "message/")) else None
        print_json(
            {
                "uid": uid,
                "part": part,
                "type": kind,
                "size": len(data),
                "text": text,
                "out": str(out) if out else None,
            }
        )
    elif out is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data.replace(b"\r\n", b"\n"))
        sys.stdout.flush()
    else:
        console.print(f"Wrote {kind} ({len(data)} bytes) to {out}", markup=False)


@app.command()
def browse(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CaFileOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Browse interactively: folders, messages, their parts, any part (q quits).

    Nothing is marked seen: folders are examined read-only and parts fetched with BODY.PEEK.
    """
    from wirelab.imap.browse import MailBrowser

    if not sys.stdout.isatty():
        raise ConfigError("imap browse needs a terminal (use imap summary and fetch in scripts)")
    target = host or "mail.example.com"
    with _session(host, port, user, password, starttls, cafile, timeout) as client:
        MailBrowser(client, target).run()


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="The mail store (default: the lab directory's mail/).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    implicit_tls: Annotated[
        bool, typer.Option("--implicit-tls", help="TLS from the first byte (the imaps port).")
    ] = False,
) -> None:
    """Run the lab's IMAP server (pymap: STARTTLS, LOGIN after TLS) until Ctrl-C."""
    from wirelab.config import private_dir, state_dir
    from wirelab.imap.server import IMAPSettings, open_imap_server
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
    settings = IMAPSettings(store, tls_context=server_context(cert, key), implicit_tls=implicit_tls)
    number = bind_port(port, "imap", "imaps" if implicit_tls else "imap")
    run_server(
        lambda: open_imap_server(host, number, settings),
        "IMAP, implicit TLS" if implicit_tls else "IMAP with STARTTLS",
        loggers=["wirelab.imap"],
    )
