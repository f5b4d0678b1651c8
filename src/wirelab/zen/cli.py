"""``wirelab zen archs|serve|client|bench`` (chapter 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wirelab.cli.common import (
    ChartOption,
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    console,
    err_console,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LOOPBACK, default_port
from wirelab.net.addresses import format_address, parse_port
from wirelab.net.limits import DEFAULT_TIMEOUT

__all__ = ["app"]

app = typer.Typer(
    name="zen",
    help="Chapter 7: the Zen Q&A protocol served by eleven server architectures, and a benchmark.",
    no_args_is_help=True,
)

#: The lab endpoints of the zen service (the default architecture and the two inetd styles).
LAB_ENDPOINTS = ("zen", "inetd-nowait", "inetd-wait")


def _int_list(text: str, what: str) -> list[int]:
    """``1,10,100`` -> ``[1, 10, 100]``; anything else is a usage error (exit 2)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"must be comma-separated numbers, not {text!r}", param_hint=f"'{what}'"
        ) from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"must be positive numbers, not {text!r}", param_hint=f"'{what}'")
    return values


def _check_archs(names: list[str]) -> None:
    """An architecture that does not exist is a usage error (exit 2)."""
    from wirelab.zen.archs import ARCHS

    unknown = [name for name in names if name not in ARCHS]
    if unknown:
        raise typer.BadParameter(
            f"unknown architecture {', '.join(map(repr, unknown))} (known: {', '.join(ARCHS)})",
            param_hint="'--arch'",
        )


@app.command()
def archs(json_output: JsonOption = False) -> None:
    """Print the architecture names, one per line (--json: with the book's program for each)."""
    from wirelab.zen.archs import ARCHS

    if json_output:
        print_json(
            [
                {"name": a.name, "book": a.book, "summary": a.summary, "concurrent": a.concurrent}
                for a in ARCHS.values()
            ]
        )
        return
    for name in ARCHS:
        console.print(name)


#: The architectures whose size ``--workers`` sets: threads, or processes.
WORKER_ARCHS = ("threadpool", "prefork")


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="Architecture.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Threads or processes.")
    ] = None,
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", min=0.01)] = 60.0,
    delay: Annotated[
        float, typer.Option("--delay", min=0.0, help="Simulated work per answer, seconds.")
    ] = 0.0,
) -> None:
    """Serve Zen until Ctrl-C (the book's ``srv_*.py HOST -p PORT``)."""
    import asyncio

    from wirelab.zen._common import RunningServer
    from wirelab.zen._core import ZenConfig
    from wirelab.zen.archs import DEFAULT_ARCH, start_server

    number = parse_port(port) if port is not None else default_port("zen", "zen")
    config = ZenConfig(workers=workers, idle_timeout=idle_timeout, delay=delay)
    chosen = arch or DEFAULT_ARCH
    _check_archs([chosen])
    if workers is not None and chosen not in WORKER_ARCHS:
        raise typer.BadParameter(
            f"{chosen} has no workers to set (only {' and '.join(WORKER_ARCHS)} do)",
            param_hint="'--workers'",
        )

    async def start() -> RunningServer:
        # The architectures start their own threads or processes: bind in a worker thread.
        return await asyncio.to_thread(start_server, chosen, host, number, config)

    run_server(
        start,
        loggers=("wirelab.zen",),
        announce=lambda server: f"listening at {format_address(server.address)} ({chosen})",
    )


@app.command()
def client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    error: Annotated[
        bool, typer.Option("--error", help="Send broken questions to see the errors.")
    ] = False,
    pipeline: Annotated[
        int,
        typer.Option(
            "--pipeline",
            "-P",
            min=1,
            max=100_000,
            help="Keep N questions in flight (our servers only: the book's answer one at a time).",
        ),
    ] = 1,
    lab_endpoint: Annotated[
        str,
        typer.Option(
            "--lab-endpoint",
            help=f"Which of the lab's Zen servers to ask: {', '.join(LAB_ENDPOINTS)}.",
        ),
    ] = "zen",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Ask the aphorisms in random order and print the answers (the book's client.py).

    One question at a time, as the book's client.py, so the book's servers answer too.

    --pipeline N keeps N in flight, sending and reading at once (our servers only).
    """
    from wirelab.zen import client as zen

    if lab_endpoint not in LAB_ENDPOINTS:
        raise typer.BadParameter(
            f"{lab_endpoint!r} is not one of {', '.join(LAB_ENDPOINTS)}",
            param_hint="'--lab-endpoint'",
        )
    where, number = lab_target("zen", host, port, endpoint=lab_endpoint)
    if error:
        exchanges = zen.broken_questions(where, number, timeout=timeout)
    elif pipeline > 1:
        exchanges = zen.ask(
            where, number, zen.pipelined_questions(pipeline), pipeline=pipeline, timeout=timeout
        )
    else:
        exchanges = zen.ask(where, number, timeout=timeout)
    if json_output:
        print_json([{"question": e.question, "answer": e.answer} for e in exchanges])
        return
    if pipeline > 1:
        from wirelab.zen._core import answer_for

        wrong = sum(answer_for(e.question.encode()).decode() != e.answer for e in exchanges)
        console.print(
            f"sent {pipeline} questions, {pipeline} in flight, to {format_address((where, number))}"
        )
        console.print(f"got {len(exchanges)} answers, in order, {wrong} wrong")
        return
    for exchange in exchanges:
        console.print(f"{exchange.question} {exchange.answer}")


@app.command()
def bench(
    arch: Annotated[
        list[str] | None, typer.Option("--arch", "-a", help="Architecture (repeatable).")
    ] = None,
    connections: Annotated[str, typer.Option("--connections", "-c")] = "1,10,100,1000",
    pipeline: Annotated[str, typer.Option("--pipeline", "-P", help="Depths, e.g. 1,16.")] = "1,16",
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.2, max=30.0, help="Measured seconds per run.")
    ] = 2.0,
    warmup: Annotated[float, typer.Option("--warmup", min=0.0, max=10.0)] = 0.5,
    rounds: Annotated[int, typer.Option("--rounds", "-r", min=1, max=5)] = 1,
    idle: Annotated[
        int, typer.Option("--idle", min=0, max=50_000, help="Idle connections (0: skip).")
    ] = 10_000,
    book: Annotated[bool, typer.Option("--book/--no-book", help="Run the book's designs.")] = True,
    chart: ChartOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the JSON results.", dir_okay=False)
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Measure requests/s and latency of every architecture beside a C epoll server."""
    from wirelab.zen import bench as zb
    from wirelab.zen.render import bench_tables, write_chart

    counts = _int_list(connections, "--connections")
    depths = _int_list(pipeline, "--pipeline")
    _check_archs(arch or [])
    if max(counts) > 5000:
        raise typer.BadParameter(
            "above 5000 is not supported (descriptor limits)", param_hint="'--connections'"
        )
    tools = zb.build_tools()
    with err_console.status("benchmarking") as status:
        report = zb.run_bench(
            arch or None,
            connections=counts,
            pipelines=depths,
            seconds=seconds,
            warmup=warmup,
            rounds=rounds,
            book=book,
            idle=idle,
            tools=tools,
            progress=lambda text: status.update(text),
        )
    if out is not None:
        zb.write_json(report, out)
    if chart is not None:
        write_chart(report, chart)
    if json_output:
        print_json(report.to_json())
        return
    for table in bench_tables(report):
        console.print(table)
