"""``wirelab udp serve|client|broadcast|listen|mtu`` (chapter 2)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    check_host,
    console,
    count_option,
    err_console,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LOOPBACK, default_port
from wirelab.net.addresses import parse_port
from wirelab.udp import client as udp_client

__all__ = ["app"]

app = typer.Typer(
    name="udp",
    help="Chapter 2: UDP request/reply with backoff, broadcast, and the MTU probe.",
    no_args_is_help=True,
)


def _port(port: str | None, endpoint: str = "udp") -> int:
    return parse_port(port, "udp") if port is not None else default_port("udp", endpoint)


def _not_zero(number: int) -> int:
    """A client's destination port: 0 is where nothing can listen (a usage error)."""
    if number == 0:
        raise typer.BadParameter(
            "port 0 is not a server's port: give the port the server listens on",
            param_hint="'-p' / '--port'",
        )
    return number


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    drop: Annotated[
        float, typer.Option("--drop", min=0.0, max=0.99, help="Share of requests to drop.")
    ] = 0.0,
) -> None:
    """Answer every datagram with 'Your data was N bytes long', as the book (Ctrl-C stops)."""
    from wirelab.udp.server import open_udp_server

    number = _port(port)
    run_server(
        lambda: open_udp_server(host, number, drop=drop),
        "UDP" + (f", dropping {drop:.0%}" if drop else ""),
        loggers=("wirelab.udp.server",),
    )


@app.command()
def client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Text to send. Default: the time.")
    ] = None,
    lossy: Annotated[
        bool, typer.Option("--lossy", help="Use the lab's lossy endpoint (drops 50%).")
    ] = False,
    attempts: Annotated[
        int | None,
        typer.Option(
            "--attempts",
            min=1,
            max=100,
            help="Try this many times, the waits doubling from 0.1 s up to 1.6 s. "
            "Default: the book's schedule (0.1 s doubling, give up above 2 s: 5 attempts).",
            show_default=False,
        ),
    ] = None,
    request_id: Annotated[
        bool,
        typer.Option(
            "--request-id",
            help="Number the request ('#<id> ' before the text) and accept only the reply "
            "that echoes it: a late reply to an earlier request is ignored. Our server echoes "
            "IDs; the book's does not (the client says so).",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Send one request and wait for the reply, retrying with exponential backoff."""
    where, number = lab_target("udp", host, port, endpoint="lossy" if lossy else "udp", proto="udp")
    _not_zero(number)
    text = message if message is not None else f"The time is {datetime.now()}"
    backoff = udp_client.BOOK_BACKOFF
    if attempts is not None:
        backoff = dataclasses.replace(backoff, ceiling=1.6, max_attempts=attempts)
    reply = udp_client.request(
        where, number, text.encode("utf-8"), backoff=backoff, tagged=request_id
    )
    if json_output:
        print_json(
            {
                "reply": reply.text,
                "attempts": reply.attempts,
                "seconds": round(reply.seconds, 4),
                "local": reply.local,
                "server": reply.server,
                "request_id": request_id,
                "ignored": reply.ignored,
            }
        )
        return
    console.print(f"The OS assigned me the address {reply.local}", markup=False)
    console.print(f"The server {reply.server} replied {reply.text!r}", markup=False)
    if reply.attempts > 1:
        console.print(f"({reply.attempts} attempts, {reply.seconds:.2f} s)")
    if reply.ignored:
        console.print(f"(ignored {reply.ignored} late replies to other requests)")


@app.command()
def broadcast(
    network: Annotated[
        str, typer.Argument(help="Broadcast address, e.g. 192.168.1.255.")
    ] = "127.255.255.255",
    port: PortOption = None,
    message: Annotated[str, typer.Option("--message", "-m")] = "Broadcast datagram!",
    json_output: JsonOption = False,
) -> None:
    """Send one broadcast datagram (SO_BROADCAST), as the book's client; no reply comes."""
    data = message.encode("utf-8")
    where = udp_client.send_broadcast(network, _not_zero(_port(port)), data)
    if json_output:
        print_json({"sent": len(data), "to": where})
        return
    console.print(f"sent {len(data)} bytes to {where}", markup=False)


@app.command()
def listen(
    interface: Annotated[
        str,
        typer.Argument(
            help="Address to bind. The default, loopback's broadcast address, hears "
            "broadcasts on this machine only; 0.0.0.0 hears them (and more) from the network.",
            callback=check_host,
        ),
    ] = "127.255.255.255",
    port: PortOption = None,
    count: Annotated[int, count_option("Datagrams to wait for.")] = 1,
    timeout: TimeoutOption = 30.0,
    json_output: JsonOption = False,
) -> None:
    """Print datagrams (broadcasts too) as they arrive, as the book's broadcast server."""
    got = udp_client.listen_broadcast(interface, _port(port), count=count, timeout=timeout)
    if json_output:
        print_json(
            [{"sender": sender, "text": data.decode("utf-8", "replace")} for sender, data in got]
        )
    else:
        for sender, data in got:
            text = data.decode("utf-8", "replace")
            console.print(f"The client at {sender} says: {text!r}", markup=False)
    if not got:
        err_console.print(f"nothing arrived within {timeout:g} s")
        raise typer.Exit(1)


@app.command()
def mtu(
    host: ClientHostArgument = None, port: PortOption = None, json_output: JsonOption = False
) -> None:
    """Probe the path MTU with don't-fragment set (Linux)."""
    where, number = lab_target("udp", host, port, proto="udp")
    report = udp_client.probe_mtu(where, _not_zero(number))
    if json_output:
        print_json(
            {
                "destination": report.destination,
                "mtu": report.mtu,
                "max_payload": report.max_payload,
                "too_big_refused": report.too_big_refused,
            }
        )
        return
    console.print(f"path MTU to {report.destination}: {report.mtu} bytes")
    console.print(f"largest UDP payload that fits: {report.max_payload} bytes")
    if report.too_big_refused:
        console.print("one byte more was refused with EMSGSIZE (message too long)")
