"""``wirelab smtp send|ehlo|serve`` (chapter 13).

``send`` takes the sender and the recipients as positionals (the book's ``fromaddr toaddr
[toaddr...]``) and names the server with ``-s/--server HOST[:PORT]``; without it, it looks up
the first recipient's domain's MX in the lab DNS and delivers there (the lab's SMTP port).
``ehlo`` names its server the grammar's way (optional ``HOST``, ``-p``).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

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
from wirelab.net.addresses import parse_port

__all__ = ["app"]

app = typer.Typer(
    name="smtp",
    help="Chapter 13: send mail over SMTP (STARTTLS, AUTH), ask a server what it offers, serve.",
    no_args_is_help=True,
)

VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Show the SMTP conversation (stderr).")
]
ImplicitOption = Annotated[
    bool, typer.Option("--implicit-tls", help="TLS from the first byte (the smtps port).")
]


def _trace(line: str) -> None:
    err_console.print(line, markup=False)


def _context() -> object:
    state = lab_state()
    if state is not None:
        return state.ssl_context()
    from wirelab.net.tlsctx import client_context

    return client_context()


def _server(server: str | None, port: str | None, domain: str, implicit: bool) -> tuple[str, int]:
    endpoint = "smtps" if implicit else "smtp"
    if server is not None:
        host, sep, port_text = server.rpartition(":")
        if sep and port_text.isdigit() and host and not host.endswith(":"):
            return host.strip("[]"), parse_port(port_text)
        return lab_target("smtp", server, port, endpoint=endpoint)
    from wirelab.smtp.client import mail_exchanger

    exchange = mail_exchanger(domain)
    _, default = lab_target("smtp", None, port, endpoint=endpoint)
    return exchange, default


@app.command()
def send(
    sender: Annotated[str, typer.Argument(help="The envelope sender (MAIL FROM) and From.")],
    recipients: Annotated[
        list[str], typer.Argument(help="One or more recipients (RCPT TO and To).")
    ],
    server: Annotated[
        str | None,
        typer.Option(
            "-s",
            "--server",
            help="HOST[:PORT] of the SMTP server. Default: the MX of the first recipient's "
            "domain in the lab DNS.",
            show_default=False,
        ),
    ] = None,
    port: PortOption = None,
    message: Annotated[
        str | None,
        typer.Option("-m", "--message", help="The body text.", show_default=False),
    ] = None,
    subject: Annotated[str, typer.Option("--subject", help="The subject.")] = "Test message",
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Send this ready-made message (bytes) instead.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "-u", "--user", help="Log in as this account (after STARTTLS).", show_default=False
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="The password. Default: $WIRELAB_SMTP_PASSWORD, the "
            "lab account's, else asked for.",
            show_default=False,
        ),
    ] = None,
    starttls: Annotated[
        str,
        typer.Option("--starttls", help="require, if-offered or never."),
    ] = "if-offered",
    implicit_tls: ImplicitOption = False,
    insecure_plaintext: Annotated[
        bool,
        typer.Option("--insecure-plaintext", help="Allow a login without TLS (never do this)."),
    ] = False,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Send a message to one or more recipients; the envelope stays apart from the headers."""
    from wirelab.mail.messages import build_text
    from wirelab.smtp.client import crlf
    from wirelab.smtp.client import send as smtp_send

    if starttls not in ("require", "if-offered", "never"):
        raise typer.BadParameter("--starttls is require, if-offered or never")
    for address in (sender, *recipients):
        if "@" not in address or any(ch in address for ch in "\r\n\0,<>"):
            raise typer.BadParameter(f"{address[:60]!r} is not an e-mail address")
    if file is not None:
        try:
            data = crlf(file.read_bytes())  # a Unix file's LF line ends become CRLF
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
    else:
        body = message if message is not None else "Hello,\nThis is a test message from wirelab.\n"
        data = build_text(sender, recipients, subject, body if body.endswith("\n") else body + "\n")
    host, number = _server(server, port, recipients[0].rpartition("@")[2], implicit_tls)
    if user is not None and password is None:
        password = os.environ.get("WIRELAB_SMTP_PASSWORD")
        if password is None:
            lab = {a.user: a.password for a in LAB_ACCOUNTS}
            password = lab.get(user) if lab_state() is not None else None
        if password is None:
            if not sys.stdin.isatty():
                raise ConfigError("no password: give --password or set WIRELAB_SMTP_PASSWORD")
            password = getpass.getpass(f"Password for {user}: ")
    context = _context()
    import ssl

    assert isinstance(context, ssl.SSLContext)
    result = smtp_send(
        host,
        number,
        sender,
        recipients,
        data,
        context=context,
        starttls="never" if implicit_tls else starttls,  # type: ignore[arg-type]
        implicit_tls=implicit_tls,
        user=user,
        password=password,
        insecure_plaintext=insecure_plaintext,
        timeout=timeout,
        trace=_trace if verbose else None,
    )
    if json_out:
        print_json(result.to_json())
        return
    how = "TLS" if result.tls else "plain text"
    if result.authenticated:
        how += f", logged in as {user}"
    console.print(
        f"Message sent to {len(result.accepted)} recipient(s) via {host}:{number} ({how})",
        markup=False,
    )
    for rcpt, (code, text) in result.refused.items():
        err_console.print(f"refused {rcpt}: {code} {text}", markup=False)
    if result.refused:
        raise typer.Exit(1)


@app.command()
def ehlo(
    host: ClientHostArgument = None,
    port: PortOption = None,
    starttls: Annotated[
        bool, typer.Option("--starttls", help="Upgrade with STARTTLS and greet again.")
    ] = False,
    implicit_tls: ImplicitOption = False,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            help="Check that a message of this many bytes fits SIZE.",
            min=0,
            show_default=False,
        ),
    ] = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Greet a server (EHLO, falling back to HELO) and list what it offers, SIZE in bytes."""
    import ssl

    from wirelab.errors import LocalProtocolError
    from wirelab.smtp.client import ehlo as smtp_ehlo

    target, number = lab_target("smtp", host, port, endpoint="smtps" if implicit_tls else "smtp")
    if host is None and lab_state() is not None:
        target = "mail.example.com"
    context = _context()
    assert isinstance(context, ssl.SSLContext)
    caps = smtp_ehlo(
        target,
        number,
        timeout=timeout,
        context=context,
        starttls=starttls,
        implicit_tls=implicit_tls,
        trace=_trace if verbose else None,
    )
    if json_out:
        print_json(caps.to_json())
    else:
        console.print(
            f"{target}:{number} speaks {'ESMTP' if caps.esmtp else 'SMTP (HELO)'}"
            f"{' over TLS' if caps.tls else ''}",
            markup=False,
        )
        for name, value in caps.features.items():
            console.print(f"  {name.upper()} {value}".rstrip(), markup=False)
        if caps.size is not None:
            console.print(f"Maximum message size is {caps.size} bytes", markup=False)
    if size is not None and caps.size is not None and size > caps.size:
        raise LocalProtocolError(f"a {size}-byte message is over the server's SIZE {caps.size}")


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
    implicit_tls: ImplicitOption = False,
) -> None:
    """Run the lab mail host's SMTP server (STARTTLS, AUTH after TLS) until Ctrl-C."""
    from wirelab.config import private_dir, state_dir
    from wirelab.mail.seed import seed_store
    from wirelab.mail.store import MailStore
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import server_context
    from wirelab.smtp.server import SMTPSettings, open_smtp_server
    from wirelab.smtp.service import MAIL_HOSTNAMES, mail_root

    base = state_dir()
    store = MailStore(private_dir(directory or mail_root(base)))
    seed_store(store, LAB_ACCOUNTS)
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base / "ca")
    settings = SMTPSettings(store, tls_context=server_context(cert, key), implicit_tls=implicit_tls)
    number = bind_port(port, "smtp", "smtps" if implicit_tls else "smtp")
    run_server(
        lambda: open_smtp_server(host, number, settings),
        "SMTP, implicit TLS" if implicit_tls else "SMTP with STARTTLS",
        loggers=["wirelab.smtp"],
    )
