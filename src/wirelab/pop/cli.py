"""``wirelab pop stat|list|top|fetch|review|serve`` (chapter 14).

The clients connect the book's way by default: TLS from the first byte (the ``pop3s``
endpoint, ``poplib.POP3_SSL``); ``--stls`` uses the plain port and upgrades with STLS before
any password. ``--apop`` logs in with the APOP digest instead of USER/PASS. The password
comes from ``--password``, else ``$WIRELAB_POP_PASSWORD``, else the lab account's (while a
lab runs), else a prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    err_console,
    implicit_tls_option,
    lab_mail_host,
    mail_target,
    password_env,
    password_option,
    print_json,
    resolve_password,
    run_server,
    upgrade_option,
    verbose_option,
    wire_trace,
    write_file,
    write_raw_stdout,
)
from wirelab.config import LAB_ACCOUNTS, LOOPBACK

if TYPE_CHECKING:
    from wirelab.pop.client import PopClient

__all__ = ["app"]

app = typer.Typer(
    name="pop",
    help="Chapter 14: read a mailbox over POP3 (TLS, APOP, download and delete), serve.",
    no_args_is_help=True,
)

PasswordOption = Annotated[str | None, password_option("pop")]
ApopOption = Annotated[bool, typer.Option("--apop", help="Log in with APOP (an MD5 digest).")]
StlsOption = Annotated[bool, upgrade_option("--stls", "STLS", "POP3S")]
VerboseOption = Annotated[bool, verbose_option("POP3")]


def _open(
    host: str | None,
    port: str | None,
    user: str,
    password: str | None,
    apop: bool,
    stls: bool,
    cafile: Path | None,
    verbose: bool,
    timeout: float,
) -> PopClient:
    """Connect (POP3S, or the plain port and STLS) and log in; the caller closes it."""
    from wirelab.pop.client import PopClient

    target, number = mail_target("pop3", host, port, "pop3" if stls else "pop3s")
    secret = resolve_password(user, password, password_env("pop"))
    client = PopClient(
        target,
        number,
        context=client_tls_context(cafile),
        implicit_tls=not stls,
        timeout=timeout,
        trace=wire_trace(verbose),
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
    cafile: CafileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Log in and count the messages (the book's popconn.py and apopconn.py)."""
    with _open(host, port, user, password, apop, stls, cafile, verbose, timeout) as client:
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
    cafile: CafileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """List message numbers, sizes and unique ids (the book's mailbox.py)."""
    with _open(host, port, user, password, apop, stls, cafile, verbose, timeout) as client:
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
    cafile: CafileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Show a message's headers (and first lines) without downloading it (TOP)."""
    with _open(host, port, user, password, apop, stls, cafile, verbose, timeout) as client:
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
    cafile: CafileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Download one message exactly as stored (RETR); with --delete, remove it at QUIT."""
    from wirelab.pop.client import decode_message, header_text

    with _open(host, port, user, password, apop, stls, cafile, verbose, timeout) as client:
        data = client.retr(number)
        if delete:
            client.dele(number)
    if out is not None:
        write_file(out, data)
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
        write_raw_stdout(data)
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
    cafile: CafileOption = None,
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
    with _open(host, port, user, password, apop, stls, cafile, verbose, timeout) as client:
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
    directory: MailDirOption = None,
    implicit_tls: Annotated[bool, implicit_tls_option("pop3s")] = False,
) -> None:
    """Run the lab's POP3 server (STLS, APOP, deletions at QUIT) until Ctrl-C."""
    from wirelab.pop.server import POP3Settings, open_pop3_server

    store, tls_context = lab_mail_host(directory)
    settings = POP3Settings(
        store,
        tls_context=tls_context,
        implicit_tls=implicit_tls,
        apop_secrets={a.user: a.password for a in LAB_ACCOUNTS},
    )
    number = bind_port(port, "pop3", "pop3s" if implicit_tls else "pop3")
    run_server(
        lambda: open_pop3_server(host, number, settings),
        "POP3, implicit TLS" if implicit_tls else "POP3 with STLS",
        loggers=["wirelab.pop"],
    )
