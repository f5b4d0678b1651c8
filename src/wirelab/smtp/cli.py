"""``wirelab smtp send|ehlo|serve`` (chapter 13).

``send`` takes the sender and the recipients as positionals (the book's ``fromaddr toaddr
[toaddr...]``) and names the server with ``-s/--server HOST[:PORT]``; without it, it looks up
the first recipient's domain's MX in the lab DNS and delivers there (the lab's SMTP port).
``ehlo`` names its server the grammar's way (optional ``HOST``, ``-p``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    MailDirOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    bind_port,
    client_tls_context,
    console,
    err_console,
    implicit_tls_option,
    lab_mail_host,
    lab_target,
    mail_target,
    password_env,
    password_option,
    print_json,
    resolve_password,
    run_server,
    user_option,
    verbose_option,
    wire_trace,
)
from wirelab.config import LOOPBACK
from wirelab.errors import ConfigError
from wirelab.net.addresses import parse_port

__all__ = ["app"]

app = typer.Typer(
    name="smtp",
    help="Chapter 13: send mail over SMTP (STARTTLS, AUTH), ask a server what it offers, serve.",
    no_args_is_help=True,
)

VerboseOption = Annotated[bool, verbose_option("SMTP")]
ImplicitOption = Annotated[bool, implicit_tls_option("smtps")]


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
        str | None, user_option("Log in as this account (after STARTTLS).", show_default=False)
    ] = None,
    password: Annotated[str | None, password_option("smtp")] = None,
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
    if user is not None:
        password = resolve_password(user, password, password_env("smtp"))
    result = smtp_send(
        host,
        number,
        sender,
        recipients,
        data,
        context=client_tls_context(),
        starttls="never" if implicit_tls else starttls,  # type: ignore[arg-type]
        implicit_tls=implicit_tls,
        user=user,
        password=password,
        insecure_plaintext=insecure_plaintext,
        timeout=timeout,
        trace=wire_trace(verbose),
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
    from wirelab.errors import LocalProtocolError
    from wirelab.smtp.client import ehlo as smtp_ehlo

    target, number = mail_target("smtp", host, port, "smtps" if implicit_tls else "smtp")
    caps = smtp_ehlo(
        target,
        number,
        timeout=timeout,
        context=client_tls_context(),
        starttls=starttls,
        implicit_tls=implicit_tls,
        trace=wire_trace(verbose),
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
    directory: MailDirOption = None,
    implicit_tls: ImplicitOption = False,
) -> None:
    """Run the lab mail host's SMTP server (STARTTLS, AUTH after TLS) until Ctrl-C."""
    from wirelab.smtp.server import SMTPSettings, open_smtp_server

    store, tls_context = lab_mail_host(directory)
    settings = SMTPSettings(store, tls_context=tls_context, implicit_tls=implicit_tls)
    number = bind_port(port, "smtp", "smtps" if implicit_tls else "smtp")
    run_server(
        lambda: open_smtp_server(host, number, settings),
        "SMTP, implicit TLS" if implicit_tls else "SMTP with STARTTLS",
        loggers=["wirelab.smtp"],
    )
