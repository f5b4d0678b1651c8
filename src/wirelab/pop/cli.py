"""``wirelab pop stat|list|top|fetch|review|serve`` (chapter 14).

The clients connect the book's way by default: TLS from the first byte (the ``pop3s``
endpoint, ``poplib.POP3_SSL``); ``--stls`` uses the plain port and upgrades with STLS before
any password. ``--apop`` logs in with the APOP digest instead of USER/PASS. The password
comes from ``--password``, else ``$WIRELAB_POP_PASSWORD``, else the lab account's (while a
lab runs), else a prompt.
"""

from __future__ import annotations

import getpass
import os
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    lab_state,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LAB_ACCOUNTS, LOOPBACK
from wirelab.errors import ConfigError

if TYPE_CHECKING:
    from wirelab.pop.client import PopClient

__all__ = ["app"]

app = typer.Typer(
    name="pop",
    help="Chapter 14: read a mailbox over POP3 (TLS, APOP, download and delete), serve.",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option("-u", "--user", help="The account to log in as.")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="The password. Default: $WIRELAB_POP_PASSWORD, the lab account's, else asked for.",
        show_default=False,
    ),
]
ApopOption = Annotated[bool, typer.Option("--apop", help="Log in with APOP (an MD5 digest).")]
StlsOption = Annotated[
    bool,
    typer.Option("--stls", help="Use the plain port and upgrade with STLS (default: POP3S)."),
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
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Show the POP3 conversation (stderr).")
]


def _trace(line: str) -> None:
    err_console.print(line, markup=False)


def _context(cafile: Path | None = None) -> ssl.SSLContext:
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
    env = os.environ.get("WIRELAB_POP_PASSWORD")
    if env is not None:
        return env
    if lab_state() is not None:
        lab = {a.user: a.password for a in LAB_ACCOUNTS}
        if user in lab:
            return lab[user]
    if not sys.stdin.isatty():
        raise ConfigError("no password: give --password or set WIRELAB_POP_PASSWORD")
    return getpass.getpass(f"Password for {user}: ")


def _open(
    host: str | None,
    port: str | None,
    user: str,
    password: str | None,
    *,
    apop: bool,
    stls: bool,
    verbose: bool,
    timeout: float,
    cafile: Path | None,
) -> PopClient:
    from wirelab.pop.client import PopClient

    target, number = lab_target("pop3", host, port, endpoint="pop3" if stls else "pop3s")
    if host is None and lab_state() is not None:
        target = "mail.example.com"
    secret = _password(user, password)
    client = PopClient(
        target,
        number,
        context=_context(cafile),
        implicit_tls=not stls,
        timeout=timeout,
        trace=_trace if verbose else None,
    )
    try:
        client.login(user, secret, apop=apop)
    except BaseException:
        client.close()
        raise
    return client


@app.command()
def stat(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    apop: ApopOption = False,
    stls: StlsOption = False,
    cafile: CaFileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Log in and count the messages (the book's popconn.py and apopconn.py)."""
    with _open(
        host,
        port,
        user,
        password,
        apop=apop,
        stls=stls,
        verbose=verbose,
        timeout=timeout,
        cafile=cafile,
    ) as client:
        count, size = client.stat()
    if json_out:
        print_json({"messages": count, "octets": size})
    else:
        console.print(f"You have {count} messages totaling {size} bytes", markup=False)


@app.command("list")
def list_(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    apop: ApopOption = False,
    stls: StlsOption = False,
    cafile: CaFileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """List message numbers, sizes and unique ids (the book's mailbox.py)."""
    with _open(
        host,
        port,
        user,
        password,
        apop=apop,
        stls=stls,
        verbose=verbose,
        timeout=timeout,
        cafile=cafile,
    ) as client:
        listing = client.list()
        uids = client.uidl()
    if json_out:
        print_json([{"number": n, "size": s, "uid": uids.get(n)} for n, s in listing])
        return
    for number, size in listing:
        console.print(f"Message {number} has {size} bytes", markup=False)


@app.command()
def top(
    number: Annotated[int, typer.Argument(help="The message number.", min=1)],
    host: ClientHostArgument = None,
    port: PortOption = None,
    lines: Annotated[
        int, typer.Option("--lines", help="Body lines to show after the headers.", min=0)
    ] = 0,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    apop: ApopOption = False,
    stls: StlsOption = False,
    cafile: CaFileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Show a message's headers (and first lines) without downloading it (TOP)."""
    with _open(
        host,
        port,
        user,
        password,
        apop=apop,
        stls=stls,
        verbose=verbose,
        timeout=timeout,
        cafile=cafile,
    ) as client:
        data = client.top(number, lines)
    text = data.decode("utf-8", "replace")
    if json_out:
        print_json({"number": number, "lines": lines, "text": text})
    else:
        console.print(text.replace("\r\n", "\n"), markup=False, end="")


@app.command()
def fetch(
    number: Annotated[int, typer.Argument(help="The message number.", min=1)],
    host: ClientHostArgument = None,
    port: PortOption = None,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the message's bytes here.", dir_okay=False),
    ] = None,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete it from the server (at QUIT).")
    ] = False,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    apop: ApopOption = False,
    stls: StlsOption = False,
    cafile: CaFileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Download one message exactly as stored (RETR); with --delete, remove it at QUIT."""
    from wirelab.pop.client import decode_message, header_text

    with _open(
        host,
        port,
        user,
        password,
        apop=apop,
        stls=stls,
        verbose=verbose,
        timeout=timeout,
        cafile=cafile,
    ) as client:
        data = client.retr(number)
        if delete:
            client.dele(number)
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from exc
    if json_out:
        message = decode_message(data)
        print_json(
            {
                "number": number,
                "size": len(data),
                "subject": header_text(message, "Subject"),
                "deleted": delete,
                "out": str(out) if out else None,
            }
        )
    elif out is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data.replace(b"\r\n", b"\n"))
        sys.stdout.flush()
    else:
        console.print(f"Wrote message {number} ({len(data)} bytes) to {out}", markup=False)


def _ask(question: str, *, quiet: bool = False) -> bool:
    (err_console if quiet else console).print(question, markup=False)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower().startswith("y")


@app.command()
def review(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    apop: ApopOption = False,
    stls: StlsOption = False,
    cafile: CaFileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Go through the mailbox: headers, read?, delete? (the book's download-and-delete.py).

    Answers come from standard input (y/n per question; end of input means no). Messages
    you delete go at the end, when the session QUITs: interrupt it and nothing is deleted.
    """
    from wirelab.pop.client import decode_message, plain_text, summarize

    report: list[dict[str, Any]] = []
    with _open(
        host,
        port,
        user,
        password,
        apop=apop,
        stls=stls,
        verbose=verbose,
        timeout=timeout,
        cafile=cafile,
    ) as client:
        for number, size in client.list():
            summary = summarize(number, size, client.top(number, 0))
            entry = summary.to_json() | {"read": False, "deleted": False}
            if not json_out:
                console.print(f"Message {number} (size is {size} bytes):\n", markup=False)
                for name, value in summary.headers.items():
                    console.print(f"{name}: {value}", markup=False)
                console.print()
            if _ask("Read this message [ny]?", quiet=json_out):
                entry["read"] = True
                texts = plain_text(decode_message(client.retr(number)))
                entry["text"] = texts
                if not json_out:
                    console.print("-" * 72, markup=False)
                    for text in texts:
                        console.print(text, markup=False)
                        console.print("-" * 72, markup=False)
            if _ask("Delete this message [ny]?", quiet=json_out):
                client.dele(number)
                entry["deleted"] = True
                if not json_out:
                    console.print("Deleted.", markup=False)
            report.append(entry)
        answer = client.quit()
    if json_out:
        print_json({"messages": report, "quit": answer})
    else:
        deleted = sum(1 for entry in report if entry["deleted"])
        console.print(f"{deleted} message(s) deleted at QUIT: {answer}", markup=False)


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
        bool, typer.Option("--implicit-tls", help="TLS from the first byte (the pop3s port).")
    ] = False,
) -> None:
    """Run the lab's POP3 server (STLS, APOP, deletions at QUIT) until Ctrl-C."""
    from wirelab.config import private_dir, state_dir
    from wirelab.mail.seed import seed_store
    from wirelab.mail.store import MailStore
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import server_context
    from wirelab.pop.server import POP3Settings, open_pop3_server
    from wirelab.smtp.service import MAIL_HOSTNAMES, mail_root

    base = state_dir()
    store = MailStore(private_dir(directory or mail_root(base)))
    seed_store(store, LAB_ACCOUNTS)
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base / "ca")
    settings = POP3Settings(
        store,
        tls_context=server_context(cert, key),
        implicit_tls=implicit_tls,
        apop_secrets={a.user: a.password for a in LAB_ACCOUNTS},
    )
    number = bind_port(port, "pop3", "pop3s" if implicit_tls else "pop3")
    run_server(
        lambda: open_pop3_server(host, number, settings),
        "POP3, implicit TLS" if implicit_tls else "POP3 with STLS",
        loggers=["wirelab.pop"],
    )
