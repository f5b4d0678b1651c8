"""``wirelab rpc serve|call|client|introspect`` (chapter 18): XML-RPC, JSON-RPC and RPyC."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    bind_port,
    console,
    lab_target,
    print_json,
    run_server,
)
from wirelab.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    name="rpc",
    help="Chapter 18: remote procedure calls with XML-RPC, JSON-RPC 2.0 and RPyC.",
    no_args_is_help=True,
)


class Kind(StrEnum):
    """The three RPC kinds of chapter 18 (each a lab endpoint)."""

    xmlrpc = "xmlrpc"
    jsonrpc = "jsonrpc"
    rpyc = "rpyc"


KindOption = Annotated[Kind, typer.Option("--kind", help="Which RPC: xmlrpc, jsonrpc or rpyc.")]


def _out(text: str) -> None:
    console.print(text, markup=False)


def _url(target: str) -> tuple[str, Kind | None]:
    """A URL as given, or the running lab's endpoint for ``xmlrpc``/``jsonrpc``."""
    if target in (Kind.xmlrpc.value, Kind.jsonrpc.value):
        host, port = lab_target("rpc", None, None, endpoint=target)
        return f"http://{host}:{port}/", Kind(target)
    from wirelab.rpc.client import parse_url

    try:
        parse_url(target)
    except ConfigError as exc:
        raise typer.BadParameter(
            f"{exc} (or say xmlrpc or jsonrpc: the lab's)", param_hint="'TARGET'"
        ) from None
    return target, None


def _arg(text: str) -> Any:
    """A command-line argument: a JSON value if it is one (2, 2.5, [1, 2], "x"), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@app.command()
def serve(
    host: ServeHostArgument = "127.0.0.1",
    kind: KindOption = Kind.xmlrpc,
    port: PortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "-w",
            "--workers",
            help=(
                "xmlrpc, jsonrpc: worker processes sharing the port, each with its own limits "
                "(1024 connections each); default one per CPU, at most 8. rpyc is one process."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve one RPC kind until Ctrl-C: the book's functions, corrected, on the book's port."""
    from wirelab.rpc.workers import MAX_WORKERS, default_workers

    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise typer.BadParameter(
            f"{workers} is not a number of workers from 1 to {MAX_WORKERS}",
            param_hint="'--workers'",
        )
    if kind is Kind.rpyc and workers not in (None, 1):
        raise typer.BadParameter(
            "rpyc is served from one process (its service keeps state per connection)",
            param_hint="'--workers'",
        )
    number = bind_port(port, "rpc", kind.value)
    from wirelab.rpc.http import use_uvloop

    use_uvloop()
    if kind is Kind.rpyc:
        from wirelab.rpc.rpyc_server import open_rpyc_server

        run_server(
            lambda: open_rpyc_server(host, number),
            "RPyC line counter, service mode",
            loggers=["wirelab.rpc"],
        )
        return
    what = "XML-RPC, paths / and /RPC2" if kind is Kind.xmlrpc else "JSON-RPC 2.0"
    count = workers if workers is not None else default_workers()
    if count > 1:
        _run_workers(kind.value, host, number, count, what)
    elif kind is Kind.xmlrpc:
        from wirelab.rpc.server import open_xmlrpc_server

        run_server(lambda: open_xmlrpc_server(host, number), what, loggers=["wirelab.rpc"])
    else:
        from wirelab.rpc.server import open_jsonrpc_server

        run_server(lambda: open_jsonrpc_server(host, number), what, loggers=["wirelab.rpc"])


def _run_workers(kind: str, host: str, port: int, workers: int, what: str) -> None:
    """Serve with a :class:`~wirelab.rpc.workers.WorkerPool` until Ctrl-C or SIGTERM.

    Raises:
        ConnectError: the address cannot be bound.
        ServiceUnavailable: a worker did not start, or workers died too often.
    """
    import asyncio
    import contextlib
    import logging
    import signal

    from wirelab.cli.common import err_console
    from wirelab.errors import ServiceUnavailable
    from wirelab.net.addresses import format_address, listen_tcp
    from wirelab.rpc.workers import WorkerPool

    logging.getLogger("wirelab.rpc").setLevel(logging.INFO)

    async def main() -> None:
        stop = asyncio.Event()  # SIGTERM ends it as Ctrl-C does, from the first moment on
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        pool = WorkerPool(kind, listen_tcp(host, port, backlog=1024), workers)
        try:
            await pool.start()
            err_console.print(
                f"listening at {format_address(pool.address)} ({what}; {workers} worker "
                f"processes, pids {' '.join(map(str, pool.pids))})",
                markup=False,
            )
            pool.failed.add_done_callback(lambda _: stop.set())
            await stop.wait()
            if pool.failed.done():
                raise ServiceUnavailable(pool.failed.result())
        finally:
            await pool.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    err_console.print("stopped", markup=False)


@app.command(context_settings={"ignore_unknown_options": True})
def call(
    target: Annotated[
        str, typer.Argument(help="http://HOST:PORT/ (or /RPC2), or xmlrpc / jsonrpc: the lab's.")
    ],
    method: Annotated[str, typer.Argument(help="The remote method (addtogether, quadratic ...).")],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="Arguments: JSON values (2, -4.5, '[1, 2]') or plain text."),
    ] = None,
    kind: Annotated[
        Kind | None,
        typer.Option("--kind", help="xmlrpc or jsonrpc, for a URL (default: xmlrpc)."),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Call one remote method and print its result (a fault is an error, exit 1)."""
    from wirelab.rpc.client import JSONRPCClient, XMLRPCClient

    url, implied = _url(target)
    chosen = kind or implied or Kind.xmlrpc
    if chosen is Kind.rpyc:
        raise typer.BadParameter(
            "rpyc has no call by name: use 'rpc client --kind rpyc'", param_hint="'--kind'"
        )
    params = [_arg(a) for a in args or []]
    if chosen is Kind.xmlrpc:
        with XMLRPCClient(url, timeout=timeout) as xml_client:
            result = xml_client.call(method, *params)
    else:
        with JSONRPCClient(url, timeout=timeout) as json_client:
            result = json_client.call(method, *params)
    if json_output:
        print_json(
            {"url": url, "kind": chosen.value, "method": method, "params": params, "result": result}
        )
        return
    _out(repr(result))


@app.command()
def introspect(
    target: Annotated[
        str, typer.Argument(help="http://HOST:PORT/, or xmlrpc: the lab's.")
    ] = "xmlrpc",
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """List an XML-RPC server's methods with their signatures and help (introspection)."""
    from wirelab.rpc.client import XMLRPCClient

    url, _ = _url(target)
    with XMLRPCClient(url, timeout=timeout) as client:
        infos = client.introspect()
    if json_output:
        print_json([{"name": i.name, "signatures": i.signatures, "help": i.help} for i in infos])
        return
    _out("Here are the functions supported by this server:")
    for info in infos:
        for signature in info.signatures or ["..."]:
            _out(f"{info.name}({signature})")
        if info.help:
            _out(f"   {info.help}")


#: The book's xmlrpc_multicall.py calls.
BOOK_MULTICALL: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("addtogether", ("a", "b", "c")),
    ("quadratic", (2, -4, 0)),
    ("remote_repr", ([1, 2.0, "three"],)),
)


@app.command()
def multicall(
    target: Annotated[
        str, typer.Argument(help="http://HOST:PORT/, or xmlrpc: the lab's.")
    ] = "xmlrpc",
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Send the book's three calls in one request (system.multicall); print each answer."""
    from wirelab.rpc.client import RPCFault, XMLRPCClient

    url, _ = _url(target)
    with XMLRPCClient(url, timeout=timeout) as client:
        answers = client.multicall(BOOK_MULTICALL)
    if json_output:
        print_json(
            [
                {"call": method, "params": list(params)}
                | (
                    {"fault": {"code": a.code, "message": a.message}}
                    if isinstance(a, RPCFault)
                    else {"result": a}
                )
                for (method, params), a in zip(BOOK_MULTICALL, answers, strict=True)
            ]
        )
        return
    for answer in answers:
        if isinstance(answer, RPCFault):
            _out(f"fault {answer.code}: {answer.message}")
        else:
            _out(answer if isinstance(answer, str) else repr(answer))


#: The book's xmlrpc_client.py calls, in its order (its last one is meant to fail).
BOOK_XML_CALLS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("addtogether", ("x", "ÿ", "z")),
    ("addtogether", (20, 30, 4, 1)),
    ("quadratic", (2, -4, 0)),
    ("quadratic", (1, 2, 1)),
    ("remote_repr", ((1, 2.0, "three"),)),
    ("remote_repr", ([1, 2.0, "three"],)),
    ("remote_repr", ({"name": "Arthur", "data": {"age": 42, "sex": "M"}},)),
    ("quadratic", (1, 0, 1)),
)


@app.command()
def client(
    host: ClientHostArgument = None,
    kind: KindOption = Kind.xmlrpc,
    port: PortOption = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="rpyc: the local file whose lines are counted (default: the book's testfile.txt).",
            dir_okay=False,
            exists=True,
            readable=True,
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Run the book's client for one kind: its calls, in its order, faults shown."""
    where_host, where_port = lab_target("rpc", host, port, endpoint=kind.value)
    records: list[dict[str, Any]] = []
    if kind is Kind.xmlrpc:
        from wirelab.rpc.client import RPCFault, XMLRPCClient

        with XMLRPCClient(f"http://{where_host}:{where_port}/", timeout=timeout) as xml_client:
            for method, params in BOOK_XML_CALLS:
                try:
                    result = xml_client.call(method, *params)
                except RPCFault as fault:
                    records.append(
                        {
                            "call": method,
                            "params": list(params),
                            "fault": {"code": fault.code, "message": fault.message},
                        }
                    )
                    if not json_output:
                        _out(f"{method}{params!r} -> fault {fault.code}: {fault.message}")
                    continue
                records.append({"call": method, "params": list(params), "result": result})
                if not json_output:
                    _out(repr(result) if not isinstance(result, str) else result)
    elif kind is Kind.jsonrpc:
        from wirelab.rpc.client import JSONRPCClient

        params = ((1, 2, 3), 27, {"Sirius": -1.46, "Rigel": 0.12})
        with JSONRPCClient(f"http://{where_host}:{where_port}/", timeout=timeout) as json_client:
            result = json_client.call("lengths", *params)
        records.append({"call": "lengths", "params": list(params), "result": result})
        if not json_output:
            _out(repr(result))
    else:
        from wirelab.rpc.client import count_lines
        from wirelab.rpc.rpyc_server import DEFAULT_FILES

        path = file or DEFAULT_FILES / "testfile.txt"
        seen: list[str] = []

        def noisy(line: str) -> None:
            seen.append(line)
            if not json_output:
                _out(f"Noisy: {line!r}")

        count = count_lines(where_host, where_port, path, noisy, timeout=timeout)
        records.append({"call": "line_counter", "file": str(path), "lines": seen, "result": count})
        if not json_output:
            _out(f"The number of lines in the file was {count}")
    if json_output:
        print_json({"kind": kind.value, "server": f"{where_host}:{where_port}", "calls": records})
