"""``wirelab tcp serve|client|deadlock`` (chapter 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    check_host,
    check_timeout,
    console,
    err_console,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LOOPBACK, default_port
from wirelab.errors import ConfigError
from wirelab.net.addresses import parse_port
from wirelab.tcp._core import parse_bytecount

__all__ = ["app"]

app = typer.Typer(
    name="tcp",
    help="Chapter 3: exact-length TCP messages, socket names, half-close and the deadlock.",
    no_args_is_help=True,
)


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    upper: Annotated[
        bool, typer.Option("--upper", help="Serve the upper-casing echo of the deadlock demo.")
    ] = False,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", min=0.1, help="Seconds a quiet client may stay.")
    ] = 60.0,
) -> None:
    """Answer 16-byte messages with 'Farewell, client' (Ctrl-C stops)."""
    from wirelab.tcp.server import UpperSettings, open_sixteen_server, open_upper_server

    endpoint = "upper" if upper else "sixteen"
    number = parse_port(port, "tcp") if port is not None else default_port("tcp", endpoint)
    if upper:
        settings = UpperSettings(idle_timeout=idle_timeout)
        run_server(
            lambda: open_upper_server(host, number, settings),
            "upper-casing echo",
            loggers=("wirelab.tcp",),
        )
    else:
        run_server(
            lambda: open_sixteen_server(host, number, idle_timeout=idle_timeout),
            "sixteen exchange",
            loggers=("wirelab.tcp",),
        )


@app.command()
def client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Send 'Hi there, server' and read exactly 16 bytes back, as the book's client."""
    from wirelab.tcp.client import exchange

    where, number = lab_target("tcp", host, port, endpoint="sixteen")
    reply = exchange(where, number, timeout=timeout)
    if json_output:
        print_json(reply.to_json())
        return
    console.print(f"Client has been assigned socket name {reply.local}", markup=False)
    console.print(f"Connected to the server at {reply.server}", markup=False)
    console.print(f"The server said {reply.reply!r}", markup=False)


@app.command()
def deadlock(
    target: Annotated[
        list[str],
        typer.Argument(
            metavar="[HOST] BYTECOUNT",
            help="Optional host, then bytes to send (1000, 64K, 4M), rounded up to 16.",
            show_default=False,
        ),
    ],
    port: PortOption = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="halfclose (the book's client): send all, SHUT_WR, read to EOF; "
            "naive: send all, then read; concurrent: send and read at once.",
        ),
    ] = "halfclose",
    timeout: Annotated[
        float,
        typer.Option(
            "-t",
            "--timeout",
            help="Seconds without progress = deadlock.",
            callback=check_timeout,
        ),
    ] = 2.0,
    json_output: JsonOption = False,
) -> None:
    """Stream 'capitalize this!' to the upper-casing echo and read it back."""
    from wirelab.tcp.deadlock import MODES, deadlock

    if not 1 <= len(target) <= 2:
        raise typer.BadParameter("give [HOST] BYTECOUNT", param_hint="[HOST] BYTECOUNT")
    if mode not in MODES:
        raise typer.BadParameter(f"choose from {', '.join(MODES)}", param_hint="--mode")
    try:
        bytecount = parse_bytecount(target[-1])
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="BYTECOUNT") from None
    host = check_host(target[0]) if len(target) == 2 else None
    where, number = lab_target("tcp", host, port, endpoint="upper")
    with _progress_bar(bytecount) as update:
        report = deadlock(where, number, bytecount, mode, stall=timeout, progress=update)
    if json_output:
        print_json(report.to_json())
        return
    console.print(
        f"sent {report.bytecount} bytes to {report.server} and read {report.received} back, "
        f"every byte upper-cased ({report.mode}, {report.seconds:.2f} s)"
    )


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (on a terminal only), fed ``(sent, received)``."""
    if not err_console.is_terminal:
        yield lambda sent, received: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    columns = (TextColumn("{task.description:>6}"), BarColumn(), DownloadColumn(binary_units=True))
    with Progress(*columns, console=err_console, transient=True) as bar:
        sent_task = bar.add_task("sent", total=max(total, 1))
        read_task = bar.add_task("echoed", total=max(total, 1))

        def update(sent: int, received: int) -> None:
            bar.update(sent_task, completed=sent)
            bar.update(read_task, completed=received)

        yield update
