"""``wirelab udp server|client|broadcast|listen|mtu`` (chapter 2)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime
from typing import Annotated

import typer

from wirelab.cli.common import JsonOption, PortOption, console, err_console, lab_target, print_json
from wirelab.config import LOOPBACK, default_port
from wirelab.net.addresses import format_address, parse_port
from wirelab.udp import client as udp_client
from wirelab.udp.server import open_udp_server

__all__ = ["app"]

app = typer.Typer(
    name="udp",
    help="Chapter 2: UDP request/reply with backoff, broadcast, and the MTU probe.",
    no_args_is_help=True,
)

HostArg = Annotated[
    str | None, typer.Argument(help="Host name or address. Default: the lab's, or loopback.")
]


@app.command()
def server(
    host: Annotated[str, typer.Argument(help="Address to bind.")] = LOOPBACK,
    port: PortOption = None,
    drop: Annotated[
        float, typer.Option("--drop", min=0.0, max=0.99, help="Share of requests to drop.")
    ] = 0.0,
) -> None:
    """Answer every datagram with its length (Ctrl-C stops)."""
    number = parse_port(port, "udp") if port is not None else default_port("udp", "udp")
    logging.getLogger("wirelab.udp.server").setLevel(logging.INFO)

    async def run() -> None:
        transport, _ = await open_udp_server(host, number, drop=drop)
        where = format_address(transport.get_extra_info("sockname"))
        err_console.print(f"listening at UDP {where}" + (f", dropping {drop:.0%}" if drop else ""))
        try:
            await asyncio.Event().wait()
        finally:
            transport.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        err_console.print("stopped")


@app.command()
def client(
    host: HostArg = None,
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
    json_output: JsonOption = False,
) -> None:
    """Send one request and wait for the reply, retrying with exponential backoff."""
    where, number = lab_target("udp", host, port, endpoint="lossy" if lossy else "udp", proto="udp")
    text = message if message is not None else f"The time is {datetime.now()}"
    backoff = udp_client.BOOK_BACKOFF
    if attempts is not None:
        backoff = dataclasses.replace(backoff, ceiling=1.6, max_attempts=attempts)
    reply = udp_client.request(where, number, text.encode("utf-8"), backoff=backoff)
    if json_output:
        print_json(
            {
                "reply": reply.text,
                "attempts": reply.attempts,
                "seconds": round(reply.seconds, 4),
                "local": reply.local,
                "server": reply.server,
            }
        )
        return
    console.print(f"The OS assigned me the address {reply.local}")
    console.print(f"The server {reply.server} replied {reply.text!r}")
    if reply.attempts > 1:
        console.print(f"({reply.attempts} attempts, {reply.seconds:.2f} s)")


@app.command()
def broadcast(
    network: Annotated[
        str, typer.Argument(help="Broadcast address, e.g. 192.168.1.255.")
    ] = "127.255.255.255",
    port: PortOption = None,
    message: Annotated[str, typer.Option("--message", "-m")] = "Broadcast datagram!",
) -> None:
    """Send one broadcast datagram (SO_BROADCAST); no reply is expected."""
    number = parse_port(port, "udp") if port is not None else default_port("udp", "udp")
    where = udp_client.send_broadcast(network, number, message.encode("utf-8"))
    console.print(f"sent {len(message.encode())} bytes to {where}")


@app.command()
def listen(
    interface: Annotated[str, typer.Argument(help='Address to bind; "" hears broadcasts.')] = "",
    port: PortOption = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1)] = 1,
    timeout: Annotated[float, typer.Option("--timeout", "-t", min=0.0)] = 30.0,
) -> None:
    """Print datagrams (including broadcasts) as they arrive."""
    number = parse_port(port, "udp") if port is not None else default_port("udp", "udp")
    got = udp_client.listen_broadcast(interface, number, count=count, timeout=timeout)
    for sender, data in got:
        console.print(f"the client at {sender} says {data.decode('utf-8', 'replace')!r}")
    if not got:
        err_console.print(f"nothing arrived within {timeout:g} s")
        raise typer.Exit(1)


@app.command()
def mtu(host: HostArg = None, port: PortOption = None, json_output: JsonOption = False) -> None:
    """Probe the path MTU with don't-fragment set (Linux)."""
    where, number = lab_target("udp", host, port, proto="udp")
    report = udp_client.probe_mtu(where, number)
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
