"""``wirelab queue pi|serve|judge|ask`` (chapter 8: ZeroMQ pipelines).

By default every command speaks the book's messages (``queuepi.py``): one point per
message, ``[x, y]`` requests answered by one number, ``Y``/``N`` verdicts, so any stage of
the book's program can take the place of ours. ``--batch N`` (``pi``) or ``--wire batch``
switches to our batched formats.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from wirelab.cli.common import (
    JsonOption,
    PortOption,
    TimeoutOption,
    check_host,
    console,
    err_console,
    lab_target,
    print_json,
)
from wirelab.config import LOOPBACK, default_port
from wirelab.errors import ConfigError
from wirelab.net.addresses import parse_port

__all__ = ["app"]

app = typer.Typer(
    name="queue",
    help="Chapter 8: a ZeroMQ pipeline (PUB/SUB, REQ/REP, PUSH/PULL) that estimates pi.",
    no_args_is_help=True,
)

#: Points per run when none is given: the book's wire sends one message per point.
DEFAULT_POINTS = {"book": 10_000, "batch": 1_000_000}


def _lab_pythagoras() -> str:
    from wirelab.queue.sockets import tcp_endpoint

    host, port = lab_target("queue", None, None, endpoint="rep")
    return tcp_endpoint(host, port)


def _endpoint(value: str | None) -> str | None:
    """Option callback: an endpoint libzmq would misread is a usage error (exit 2)."""
    from wirelab.queue.sockets import check_endpoint

    if value is None or value == "lab":
        return value
    try:
        return check_endpoint(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _endpoints(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        _endpoint(value)
    return values


def _wire(value: str | None) -> str | None:
    if value is not None and value not in ("book", "batch"):
        raise typer.BadParameter(f"{value!r} is not book or batch")
    return value


WireOption = Annotated[
    str | None,
    typer.Option(
        "--wire",
        help="Message formats: book (the book's, one point per message; default) or batch "
        "(ours: many points per message).",
        show_default=False,
        callback=_wire,
    ),
]
PythagorasOption = Annotated[
    list[str] | None,
    typer.Option(
        "--pythagoras",
        help="Use running pythagoras services (tcp://host:port, or 'lab'); repeatable.",
        callback=_endpoints,
    ),
]


@app.command()
def pi(
    count: Annotated[
        int | None,
        typer.Option(
            "-n",
            "--count",
            "--points",
            min=1,
            max=100_000_000,
            help="Random points. Default: 10,000 on the book's wire, 1,000,000 with --batch.",
            show_default=False,
        ),
    ] = None,
    transport: Annotated[
        str, typer.Option("--transport", help="tcp (loopback) or inproc (threads).")
    ] = "tcp",
    wire: WireOption = None,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=100_000,
            help="Points per message on our batched wire (implies --wire batch; default 1000).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Repeatable points.")] = None,
    book_ports: Annotated[
        bool,
        typer.Option(
            "--book-ports", help="Bind the book's 6700 (PUB), 6701 (REP) and 6702 (PULL)."
        ),
    ] = False,
    pythagoras: PythagorasOption = None,
    external_judge: Annotated[
        bool,
        typer.Option(
            "--external-judge",
            help="Leave the judge stage to `wirelab queue judge` processes (on other hosts, "
            "say) or to the book's judge; needs --book-ports.",
        ),
    ] = False,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address the PUB and PULL sockets bind (tcp only).", callback=check_host
        ),
    ] = LOOPBACK,
    timeout: TimeoutOption = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Estimate pi by the Monte-Carlo method through a ZeroMQ pipeline (F44-F46)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wirelab.queue.pipeline import DEFAULT_BATCH, run_pi

    if transport not in ("tcp", "inproc"):
        raise typer.BadParameter("must be tcp or inproc", param_hint="--transport")
    if wire == "book" and batch is not None:
        raise typer.BadParameter(
            "the book's wire sends one point per message", param_hint="'--batch'"
        )
    chosen = wire or ("batch" if batch is not None else "book")
    points = count if count is not None else DEFAULT_POINTS[chosen]
    services = [_lab_pythagoras() if p == "lab" else p for p in pythagoras or []]
    if services and transport == "inproc":
        raise typer.BadParameter(
            "needs --transport tcp (inproc stays in this process)", param_hint="'--pythagoras'"
        )
    if external_judge and (not book_ports or services):
        raise typer.BadParameter(
            "needs --book-ports (the judges connect to 6700 and 6702) and no --pythagoras "
            "(the judges have their own)",
            param_hint="'--external-judge'",
        )
    if host != LOOPBACK:
        err_console.print(f"warning: binding {host}: ZeroMQ's tcp is not encrypted", markup=False)
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
            wire=chosen,
            batch=batch or DEFAULT_BATCH,
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
    per = "the book's messages, 1 point each" if chosen == "book" else f"{result.batch} points"
    console.print(
        f"{result.seconds:.2f} s over {transport}: {result.points_per_second:,.0f} points/s, "
        f"{result.messages:,} messages ({result.messages_per_second:,.0f}/s), "
        + (per if chosen == "book" else f"{per} per message")
    )


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Argument(
            help="The address to bind (0.0.0.0 or :: for every interface). Default: 127.0.0.1.",
            callback=check_host,
            show_default=False,
        ),
    ] = None,
    port: PortOption = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "-e",
            "--endpoint",
            help="Bind this ZeroMQ endpoint instead of HOST and PORT (tcp://HOST:PORT, ipc://...).",
            show_default=False,
            callback=_endpoint,
        ),
    ] = None,
) -> None:
    """Run the pythagoras REP service (the book's [x, y] and our batches) until Ctrl-C."""
    import zmq

    from wirelab.queue.pythagoras import serve_pythagoras
    from wirelab.queue.sockets import tcp_endpoint

    if endpoint is not None and (port is not None or host is not None):
        raise typer.BadParameter(
            "give HOST and -p PORT, or --endpoint, not both", param_hint="'--endpoint'"
        )
    if endpoint is None:
        number = parse_port(port, "tcp") if port is not None else default_port("queue", "rep")
        endpoint = tcp_endpoint(host or LOOPBACK, number)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())  # ends it as Ctrl-C does
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    answered = 0
    try:
        answered = serve_pythagoras(
            context,
            endpoint,
            stop,
            ready=lambda e: err_console.print(f"listening at {e} (pythagoras)", markup=False),
        )
    except KeyboardInterrupt:
        pass
    finally:
        context.term()
    err_console.print(f"stopped after {answered:,} request(s)" if answered else "stopped")


@app.command()
def judge(
    pub: Annotated[
        str, typer.Option("--pub", help="The source's PUB endpoint.", callback=_endpoint)
    ] = f"tcp://{LOOPBACK}:{default_port('queue', 'pub')}",
    pull: Annotated[
        str, typer.Option("--pull", help="The tally's PULL endpoint.", callback=_endpoint)
    ] = f"tcp://{LOOPBACK}:{default_port('queue', 'pull')}",
    pythagoras: Annotated[
        list[str] | None,
        typer.Option(
            "--pythagoras",
            help="pythagoras services (tcp://host:port, or 'lab'), asked in turn; repeatable. "
            "Default: the lab's.",
            callback=_endpoints,
        ),
    ] = None,
    wire: WireOption = None,
    timeout: TimeoutOption = 5.0,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.1, help="Stop after this many seconds without points."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run the judge stage on its own (for `queue pi --external-judge`, or the book's pipeline)."""
    import zmq

    from wirelab.queue.judge import Judge

    services = [_lab_pythagoras() if p == "lab" else p for p in pythagoras or ["lab"]]
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stop = threading.Event()
    worker = Judge(
        context,
        pub,
        pull,
        services,
        stop=stop,
        timeout=timeout,
        idle_exit=idle_exit,
        wire=wire or "book",
    )
    err_console.print(
        f"judge: points from {pub}, verdicts to {pull}, asking {', '.join(services)}",
        markup=False,
    )
    try:
        worker.run()
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        context.term()
    what = "points" if (wire or "book") == "book" else "batches"
    if json_output:
        print_json({"judged": worker.counts["judged"], "requests": worker.counts["req"]})
    else:
        err_console.print(f"judged {worker.counts['judged']:,} {what}")


@app.command()
def ask(
    numbers: Annotated[list[int], typer.Argument(help="Coordinates: x y [x y ...].")],
    endpoint: Annotated[
        str | None,
        typer.Option(
            "-e", "--endpoint", help="pythagoras endpoint. Default: the lab's.", callback=_endpoint
        ),
    ] = None,
    wire: WireOption = None,
    timeout: TimeoutOption = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Ask a pythagoras service for x² + y² of points (REQ/REP; one [x, y] each, as the book)."""
    import zmq

    from wirelab.queue.pythagoras import ask_pythagoras

    if len(numbers) % 2:
        raise typer.BadParameter("give coordinates in pairs: x y", param_hint="NUMBERS")
    points = [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]
    where = _lab_pythagoras() if endpoint in (None, "lab") else endpoint
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sums = ask_pythagoras(context, where, points, timeout=timeout, wire=wire or "book")
    finally:
        context.term()
    if json_output:
        print_json([{"x": x, "y": y, "sum": s} for (x, y), s in zip(points, sums, strict=True)])
        return
    for (x, y), total in zip(points, sums, strict=True):
        console.print(f"{x}² + {y}² = {total}")
