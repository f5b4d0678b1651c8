"""``wirelab cache squares|shards|ping|where`` (chapter 8: memcached and sharding)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    ChartOption,
    JsonOption,
    console,
    err_console,
    lab_state,
    print_json,
)
from wirelab.errors import ConfigError, ConnectError

if TYPE_CHECKING:
    from wirelab.cache.cluster import CacheCluster, NodeDown

__all__ = ["app"]

app = typer.Typer(
    name="cache",
    help="Chapter 8: a read-through memcached cache, and sharding keys over servers.",
    no_args_is_help=True,
)


def _check_servers(values: list[str] | None) -> list[str] | None:
    """Option callback: a bad host or a port out of range is a usage error (exit 2)."""
    from wirelab.cache.cluster import parse_servers

    if values:
        try:
            parse_servers(",".join(values))
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
    return values


ServersOption = Annotated[
    list[str] | None,
    typer.Option(
        "-s",
        "--server",
        "--servers",
        help="A memcached server, HOST[:PORT]; repeat it (or give a comma-separated list) for "
        "several. Default: the lab's, else 127.0.0.1:11211.",
        show_default=False,
        callback=_check_servers,
    ),
]


def _report(event: NodeDown) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {event}")


def _cluster(servers: list[str] | None, namespace: str = "") -> CacheCluster:
    """The cluster the user named, else the running lab's nodes, else 127.0.0.1:11211."""
    from wirelab.cache.cluster import CacheCluster, Node
    from wirelab.cache.service import lab_nodes
    from wirelab.config import LOOPBACK, default_port

    if servers:
        spec: str | list[Node] = ",".join(servers)
    else:
        state = lab_state()
        if state is not None:
            spec = lab_nodes(state)  # says so in one line if memcached is unavailable
        else:
            spec = [Node(LOOPBACK, default_port("cache", "memcached"))]
    return CacheCluster(spec, namespace=namespace)


def _reach(cluster: CacheCluster) -> dict[str, str]:
    """Ask every node for its version; fail in one line if none answers.

    Nodes that are down from the start get one warning line each; from then on, every node
    that fails is reported as it happens.
    """
    try:
        versions = {str(node): version for node, version in cluster.ping().items()}
    except ConnectError as exc:
        raise ConnectError(
            f"{exc}; start the lab (`wirelab lab up`) or pass --server HOST:PORT"
        ) from exc
    for node in cluster.dead_nodes:
        err_console.print(f"[yellow]warning:[/yellow] memcached node {node} does not answer")
    cluster.on_node_down = _report
    return versions


@app.command()
def squares(
    servers: ServersOption = None,
    rounds: Annotated[
        int, typer.Option("-r", "--rounds", min=1, max=1000, help="Measurement rounds.")
    ] = 10,
    lookups: Annotated[
        int,
        typer.Option("-n", "--count", "--lookups", min=1, max=1_000_000, help="Lookups per round."),
    ] = 2000,
    max_n: Annotated[
        int, typer.Option("--max-n", min=0, help="Numbers are drawn from 0 to this.")
    ] = 5000,
    delay: Annotated[
        float,
        typer.Option("--delay", min=0.0, max=10.0, help="Seconds the expensive function takes."),
    ] = 0.001,
    ttl: Annotated[int, typer.Option("--ttl", min=0, help="Seconds a cached value lives.")] = 300,
    seed: Annotated[int | None, typer.Option("--seed", help="Repeatable numbers.")] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            help="Key prefix; reuse one to start warm; '' gives the book's own keys (sq:N). "
            "Default: a fresh one (a cold cache).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Square random numbers through a read-through cache and watch it warm up (F42)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wirelab.cache.readthrough import SquaresRound, run_squares

    space = namespace if namespace is not None else f"wl{secrets.token_hex(3)}:"
    with _cluster(servers, space) as cluster:
        versions = _reach(cluster)
        if not json_output:
            nodes = ", ".join(f"{n} (memcached {v})" for n, v in versions.items())
            console.print(f"cache nodes: {nodes}")
            console.print(
                f"{rounds} rounds of {lookups} lookups of n in 0..{max_n}; "
                f"a miss costs {delay * 1000:g} ms"
            )

        progress = Progress(
            TextColumn("round {task.fields[round]}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=json_output or not err_console.is_terminal,
        )

        def show(done: SquaresRound) -> None:
            if not json_output:  # stdout; rich keeps the bar (on stderr) below it
                console.print(
                    f"round {done.number:>2}: {done.lookups} lookups in {done.seconds:.3f} s, "
                    f"hits {done.hit_ratio:6.1%}"
                )

        with progress:
            task = progress.add_task("squares", total=rounds * lookups, round=1)
            report = run_squares(
                cluster,
                rounds=rounds,
                lookups=lookups,
                max_n=max_n,
                delay=delay,
                ttl=ttl,
                seed=seed,
                on_lookup=lambda r, _i: progress.update(task, advance=1, round=r),
                on_round=show,
            )
    if json_output:
        print_json(report.to_json())
        return
    console.print(f"hit ratio {report.hit_ratio:.1%} over {rounds * lookups} lookups")
    console.print(f"speed-up, first round to last: {report.speedup:.1f}x")
    if report.node_failures:
        console.print(f"{report.node_failures} node failure(s); every answer stayed correct")
    if report.write_failures:
        console.print(f"{report.write_failures} value(s) could not be stored")
    if report.wrong:  # pragma: no cover - would be a bug: the run checks every answer
        raise typer.Exit(1)


@app.command()
def shards(
    words: Annotated[
        int, typer.Option("--words", min=10, max=500_000, help="How many keys.")
    ] = 20_000,
    nodes: Annotated[int, typer.Option("--nodes", min=2, max=64, help="Servers.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the word list.")] = 8,
    chart: ChartOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compare sharding schemes: spread, and keys moved when a server comes or goes (F43)."""
    from rich.table import Table

    from wirelab.cache.shards import compare_schemes, plot_report
    from wirelab.cache.words import make_words

    report = compare_schemes(make_words(words, seed=seed), nodes)
    if chart is not None:
        plot_report(report, chart)
    if json_output:
        print_json(report.to_json())
        return
    # Narrow headers, so that the table fits 80 columns (a pipe or a log file) for 4 servers.
    table = Table(title=f"{report.keys:,} words over {nodes} servers", title_justify="left")
    table.add_column("scheme", no_wrap=True)
    for server in report.servers:
        table.add_column(server.replace("server", "s"), justify="right", no_wrap=True)
    table.add_column("max/fair", justify="right", no_wrap=True)
    table.add_column(f"{nodes}->{nodes + 1}", justify="right", no_wrap=True)
    table.add_column(f"{nodes}->{nodes - 1}", justify="right", no_wrap=True)
    for s in report.schemes:
        table.add_row(
            s.name + ("" if s.stable else " *"),
            *(f"{s.counts[n] / report.keys:.1%}" for n in report.servers),
            f"{s.imbalance:.2f}",
            f"{s.moved_on_add:.1%}",
            f"{s.moved_on_remove:.1%}",
        )
    console.print(table)
    console.print(
        f"s0..s{nodes - 1}: share of keys per server; max/fair: busiest server over a fair share;"
        f" {nodes}->{nodes + 1}, {nodes}->{nodes - 1}: keys that move when a server is added, lost"
    )
    console.print("* python-hash: str hashes are randomised per process; clients would disagree")
    console.print(
        f"ideal movement: {1 / (nodes + 1):.1%} of keys when a server is added, "
        f"{1 / nodes:.1%} when one is lost"
    )
    if chart is not None:
        err_console.print(f"chart written to {chart}", markup=False)


@app.command()
def ping(servers: ServersOption = None, json_output: JsonOption = False) -> None:
    """Ask each memcached node for its version."""
    with _cluster(servers) as cluster:
        versions = _reach(cluster)
        down = [str(n) for n in cluster.dead_nodes]
    if json_output:
        print_json({"up": versions, "down": down})
        return
    for node, version in versions.items():
        console.print(f"{node}: memcached {version}")
    for node in down:
        console.print(f"{node}: down")


@app.command()
def where(
    keys: Annotated[list[str], typer.Argument(help="Keys to place.")],
    servers: ServersOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show which node of the ring holds each key (ketama consistent hashing)."""
    with _cluster(servers) as cluster:
        placed = [(key, str(cluster.node_for(key)), cluster.wire_key(key).decode()) for key in keys]
    if json_output:
        print_json([{"key": k, "node": n, "wire_key": w} for k, n, w in placed])
        return
    for key, node, wire in placed:
        console.print(f"{key} -> {node} (as {wire})", markup=False)
