"""``wirelab imap folders|info|summary|fetch|serve`` (chapter 15).

Every client command logs in over TLS (implicit, the book's way, or ``--starttls`` on the
plain port), selects read-only and fetches with ``BODY.PEEK``: reading never marks a message
``\\Seen``. The password comes from ``--password``, else ``$WIRELAB_IMAP_PASSWORD``, else the
lab account's (while a lab runs), else a prompt.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from wirelab.cli.common import (
    CafileOption,
    ClientHostArgument,
    JsonOption,
    MailDirOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    UserOption,
    bind_port,
    client_tls_context,
    console,
    count_option,
    implicit_tls_option,
    lab_mail_host,
    mail_target,
    password_env,
    password_option,
    print_json,
    resolve_password,
    run_server,
    upgrade_option,
    write_file,
    write_raw_stdout,
)
from wirelab.config import LOOPBACK
from wirelab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    name="imap",
    help="Chapter 15: read folders and messages over IMAP without marking them seen, serve.",
    no_args_is_help=True,
)

PasswordOption = Annotated[str | None, password_option("imap")]
StartTLSOption = Annotated[bool, upgrade_option("--starttls", "STARTTLS", "IMAPS")]
FolderOption = Annotated[str, typer.Option("--folder", help="The folder to read.")]


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

    target, number = mail_target("imap", host, port, "imap" if starttls else "imaps")
    client = connect(
        target,
        number,
        user,
        resolve_password(user, password, password_env("imap")),
        context=client_tls_context(cafile),
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
    cafile: CafileOption = None,
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
    cafile: CafileOption = None,
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
    cafile: CafileOption = None,
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
    cafile: CafileOption = None,
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
        write_file(out, data)
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
        write_raw_stdout(data)
    else:
        console.print(f"Wrote {kind} ({len(data)} bytes) to {out}", markup=False)


@app.command()
def browse(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    starttls: StartTLSOption = False,
    cafile: CafileOption = None,
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
    directory: MailDirOption = None,
    implicit_tls: Annotated[bool, implicit_tls_option("imaps")] = False,
) -> None:
    """Run the lab's IMAP server (pymap: STARTTLS, LOGIN after TLS) until Ctrl-C."""
    from wirelab.imap.server import IMAPSettings, open_imap_server

    store, tls_context = lab_mail_host(directory)
    settings = IMAPSettings(store, tls_context=tls_context, implicit_tls=implicit_tls)
    number = bind_port(port, "imap", "imaps" if implicit_tls else "imap")
    run_server(
        lambda: open_imap_server(host, number, settings),
        "IMAP, implicit TLS" if implicit_tls else "IMAP with STARTTLS",
        loggers=["wirelab.imap"],
    )
