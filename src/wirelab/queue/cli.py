"""``wirelab queue pi|pythagoras|judge|ask`` (chapter 8: ZeroMQ pipelines)."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from wirelab.cli.common import JsonOption, console, err_console, lab_target, print_json
from wirelab.config import LOOPBACK, default_port
from wirelab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    name="queue",
    help="Chapter 8: a ZeroMQ pipeline (PUB/SUB, REQ/REP, PUSH/PULL) that estimates pi.",
    no_args_is_help=True,
)


def _lab_pythagoras() -> str:
    from wirelab.queue.sockets import tcp_endpoint

    host, port = lab_target("queue", None, None, endpoint="rep")
    return tcp_endpoint(host, port)


@app.command()
def pi(
    points: Annotated[
        int, typer.Option("--points", "-n", min=1, max=100_000_000, help="Random points.")
    ] = 1_000_000,
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="tcp (loopback) or inproc (threads).")
    ] = "tcp",
    batch: Annotated[
        int, typer.Option("--batch", "-b", min=1, max=100_000, help="Points per message.")
    ] = 1000,
    seed: Annotated[int | None, typer.Option("--seed", help="Repeatable points.")] = None,
    book_ports: Annotated[
        bool, typer.Option("--book-ports", help="Bind the book's 6700 (PUB) and 6702 (PULL).")
    ] = False,
    pythagoras: Annotated[
        list[str] | None,
        typer.Option(
            "--pythagoras",
            help="Use running pythagoras services (tcp://host:port, or 'lab'); repeatable.",
        ),
    ] = None,
    external_judge: Annotated[
        bool,
        typer.Option(
            "--external-judge",
            help="Leave the judge stage to `wirelab queue judge` processes (on other hosts, "
            "say); needs --book-ports.",
        ),
    ] = False,
    host: Annotated[
        str,
        typer.Option("--host", help="Address the PUB and PULL sockets bind (tcp only)."),
    ] = LOOPBACK,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds without progress allowed.")
    ] = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Estimate pi by the Monte-Carlo method through a ZeroMQ pipeline (F44-F46)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wirelab.queue.pipeline import run_pi

    if transport not in ("tcp", "inproc"):
        raise typer.BadParameter("must be tcp or inproc", param_hint="--transport")
    services = [_lab_pythagoras() if p == "lab" else p for p in pythagoras or []]
    if services and transport == "inproc":
        raise ConfigError("--pythagoras needs --transport tcp (inproc stays in this process)")
    if external_judge and (not book_ports or services):
        raise typer.BadParameter(
            "needs --book-ports (the judges connect to 6700 and 6702) and no --pythagoras "
            "(the judges have their own)",
            param_hint="'--external-judge'",
        )
    if host != LOOPBACK:
        err_console.print(f"warning: binding {host}: ZeroMQ's tcp is not encrypted")
    ports = None
    if book_ports:
        ports = {"pub": default_port("queue", "pub"), "pull": default_port("queue", "pull")}
        if not services:
            ports["rep"] = default_port("queue", "rep")
    progress = Progress(
        TextColumn("points"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=json_output or not err_console.is_terminal,
    )
    lock = threading.Lock()
    with progress:
        task = progress.add_task("pi", total=points)

        def advance(done: int, _total: int) -> None:
            with lock:
                progress.update(task, completed=done)

        result = run_pi(
            points,
            transport=transport,
            batch=batch,
            seed=seed,
            host=host,
            ports=ports,
            pythagoras=services,
            judge=not external_judge,
            timeout=timeout,
            on_progress=advance,
        )
    if json_output:
        print_json(result.to_json())
        return
    console.print(f"pi ~ {result.estimate:.6f} (off by {result.error:.6f}) from {points:,} points")
    console.print(f"inside the quarter circle: {result.inside:,} of {points:,}")
    console.print(
        f"{result.seconds:.2f} s over {transport}: {result.points_per_second:,.0f} points/s, "
        f"{result.messages:,} messages ({result.messages_per_second:,.0f}/s), "
        f"{batch} points per message"
    )


@app.command("pythagoras")
def pythagoras_server(
    bind: Annotated[
        str, typer.Option("--bind", help="Endpoint to bind (tcp://host:port).")
    ] = f"tcp://{LOOPBACK}:{default_port('queue', 'rep')}",
) -> None:
    """Run the pythagoras REP service (JSON sums of squares) until Ctrl-C."""
    import zmq

    from wirelab.queue.pythagoras import serve_pythagoras

    stop = threading.Event()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        serve_pythagoras(
            context,
            bind,
            stop,
            ready=lambda e: err_console.print(f"pythagoras listening at {e}", markup=False),
        )
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        context.term()


@app.command()
def judge(
    pub: Annotated[
        str, typer.Option("--pub", help="The source's PUB endpoint.")
    ] = f"tcp://{LOOPBACK}:{default_port('queue', 'pub')}",
    pull: Annotated[
        str, typer.Option("--pull", help="The tally's PULL endpoint.")
    ] = f"tcp://{LOOPBACK}:{default_port('queue', 'pull')}",
    pythagoras: Annotated[
        list[str] | None,
        typer.Option(
            "--pythagoras",
            help="pythagoras services (tcp://host:port, or 'lab'), asked in turn; repeatable. "
            "Default: the lab's.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds a service may take to answer.")
    ] = 5.0,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.1, help="Stop after this many seconds without points."),
    ] = None,
) -> None:
    """Run the judge stage on its own, for `wirelab queue pi --external-judge`, until Ctrl-C."""
    import zmq

    from wirelab.queue.judge import Judge

    services = [_lab_pythagoras() if p == "lab" else p for p in pythagoras or ["lab"]]
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stop = threading.Event()
    worker = Judge(context, pub, pull, services, stop=stop, timeout=timeout, idle_exit=idle_exit)
    err_console.print(f"judge: points from {pub}, tallies to {pull}, asking {', '.join(services)}")
    try:
        worker.run()
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        context.term()
    err_console.print(f"judged {worker.counts['judged']:,} batches")


@app.command()
def ask(
    numbers: Annotated[list[int], typer.Argument(help="Coordinates: x y [x y ...].")],
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", "-e", help="pythagoras endpoint. Default: the lab's."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1)] = 5.0,
) -> None:
    """Ask a pythagoras service for the sums of squares of points (REQ/REP, JSON)."""
    import zmq

    from wirelab.queue.pythagoras import ask_pythagoras

    if len(numbers) % 2:
        raise typer.BadParameter("give coordinates in pairs: x y", param_hint="NUMBERS")
    points = [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]
    where = endpoint or _lab_pythagoras()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sums = ask_pythagoras(context, where, points, timeout=timeout)
    finally:
        context.term()
    for (x, y), total in zip(points, sums, strict=True):
        console.print(f"{x}² + {y}² = {total}")
