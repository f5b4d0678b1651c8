"""``wirelab telnet login|serve`` (chapter 16): automated login with negotiation shown."""

from __future__ import annotations

import asyncio
import getpass
import os
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
    lab_state,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LAB_ACCOUNTS

__all__ = ["app"]

app = typer.Typer(
    name="telnet",
    help="Chapter 16: Telnet: automated login, option negotiation, and why it is cleartext.",
    no_args_is_help=True,
)


@app.command("login")
def login_cmd(
    host: ClientHostArgument = None,
    account: Annotated[
        str | None,
        typer.Argument(
            metavar="USER",
            help="Account name (or -u). Default: the lab account (brandon).",
            show_default=False,
        ),
    ] = None,
    port: PortOption = None,
    user: Annotated[
        str | None,
        typer.Option(
            "-u",
            "--user",
            help="Account name. Default: the lab account (brandon).",
            show_default=False,
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="Default: $WIRELAB_TELNET_PASSWORD, the lab account's "
            "with a running lab, else asked.",
            show_default=False,
        ),
    ] = None,
    message: Annotated[
        str, typer.Option("-m", "--message", help="The command to run with 'exec'.")
    ] = "uptime",
    terminal: Annotated[
        str, typer.Option("--terminal", help="The terminal type to answer SB TTYPE SEND with.")
    ] = "mypython",
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Show the negotiation and the whole transcript (the password in cleartext).",
        ),
    ] = False,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Log in (prompt matching; a timeout is a failure), run one command, print its output.

    As the book's telnet_login.py: wirelab telnet login HOST USER (the lab's by default).
    """
    from wirelab.errors import ConfigError
    from wirelab.telnet.client import login

    if account is not None and user is not None and account != user:
        raise ConfigError(f"two account names: {account!r} and -u {user!r}")
    server, number = lab_target("telnet", host, port)
    user = account or user or LAB_ACCOUNTS[0].user
    if password is None:
        password = os.environ.get("WIRELAB_TELNET_PASSWORD")
    if password is None and lab_state() is not None:
        password = next((a.password for a in LAB_ACCOUNTS if a.user == user), None)
    if password is None:
        if not os.isatty(0):
            raise ConfigError(f"no password for {user} (use --password)")
        password = getpass.getpass("Password: ")
    result = asyncio.run(
        login(
            server, number, user, password, command=message, terminal_type=terminal, timeout=timeout
        )
    )
    if json_out:
        print_json(result.to_json())
        return
    if verbose:
        for line in result.negotiation:
            console.print(f"option: {line}", markup=False, highlight=False)
        for direction, text in result.transcript:
            console.print(f"{direction} {text!r}", markup=False, highlight=False)
    console.print(result.output, end="", markup=False, highlight=False)


@app.command("serve")
def serve(
    host: ServeHostArgument = "127.0.0.1",
    port: PortOption = None,
) -> None:
    """Run the lab Telnet server (login prompt, minimal shell) until Ctrl-C."""
    from wirelab.config import state_dir
    from wirelab.lab.service import LabContext
    from wirelab.telnet.server import TelnetListener, open_telnet_server
    from wirelab.telnet.service import lab_telnet_settings

    number = bind_port(port, "telnet", "telnet")
    lab = LabContext(state_dir=state_dir())

    async def start() -> TelnetListener:
        settings = await asyncio.to_thread(lab_telnet_settings, lab)
        return await open_telnet_server(host, number, settings)

    run_server(start, "telnet", loggers=["wirelab.telnet"])
