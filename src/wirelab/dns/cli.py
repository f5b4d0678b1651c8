"""``wirelab dns lookup|mx|addrinfo|ping|name`` (chapters 1 and 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    JsonOption,
    TimeoutOption,
    check_host,
    check_port,
    console,
    err_console,
    lab_state,
    print_json,
)
from wirelab.errors import ConfigError

if TYPE_CHECKING:
    import dns.resolver

__all__ = ["app"]

app = typer.Typer(
    name="dns",
    help="Chapters 1 and 4: DNS records, mail routing by MX, getaddrinfo, and ping by name.",
    no_args_is_help=True,
)


def _check_name(value: str) -> str:
    """Argument callback: a name to resolve may not be empty (exit 2, not "0.0.0.0")."""
    if not value.strip():
        raise typer.BadParameter("the name is empty")
    checked = check_host(value)
    assert checked is not None
    return checked


def _check_server(value: str | None) -> str | None:
    """Option callback: ``--server`` must look like ``HOST[:PORT]`` (usage error, exit 2)."""
    from wirelab.dns.client import split_server

    if value is None:
        return None
    try:
        split_server(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


ServerOption = Annotated[
    str | None,
    typer.Option(
        "-s",
        "--server",
        help="DNS server HOST[:PORT]. Default: the running lab's, else the system's.",
        show_default=False,
        callback=_check_server,
    ),
]
NameArgument = Annotated[
    str, typer.Argument(help="The name to look up, e.g. example.com.", callback=_check_name)
]
HostArgument = Annotated[str, typer.Argument(help="Host name or address.", callback=_check_name)]
SystemOption = Annotated[
    bool, typer.Option("--system", help="Ask the system resolver, even when a lab runs.")
]
TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA")


def _resolver(server: str | None, system: bool = False) -> dns.resolver.Resolver | None:
    """The resolver to use, announced on stderr; ``None`` means the system resolver."""
    from wirelab.dns.client import choose_server, make_resolver

    chosen = None if system else choose_server(server)
    if chosen is None:
        if server is None and not system:
            err_console.print("(no lab runs: asking the system resolver)")
        return None if system else make_resolver(None)
    err_console.print(f"(asking the DNS server {chosen})")
    return make_resolver(chosen)


def _names_resolver(server: str | None, system: bool) -> dns.resolver.Resolver | None:
    """For getaddrinfo-style commands: a DNS server only when one is chosen, else the system."""
    from wirelab.dns.client import choose_server, make_resolver

    chosen = None if system else choose_server(server)
    return make_resolver(chosen) if chosen is not None else None


@app.command()
def lookup(
    name: NameArgument,
    record_type: Annotated[
        str | None,
        typer.Option("--type", help=f"One record type ({', '.join(TYPES)}). Default: all."),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a name's A, AAAA, CNAME, MX, NS and TXT records (empty ones are not errors)."""
    from wirelab.dns.client import RECORD_TYPES, lookup_all, make_resolver

    if record_type is not None and record_type.upper() not in TYPES:
        raise typer.BadParameter(
            f"unknown record type {record_type!r} (one of {', '.join(TYPES)})",
            param_hint="'--type'",
        )
    resolver = _resolver(server) or make_resolver(None)
    types = (record_type.upper(),) if record_type else RECORD_TYPES
    results = lookup_all(name, resolver=resolver, types=types)
    if json_output:
        print_json(
            [
                {"name": r.name, "type": r.type, "canonical": r.canonical, "records": r.records}
                for r in results
            ]
        )
        return
    for result in results:
        via = f"  (via the alias, at {result.canonical})" if result.canonical != name else ""
        for record in result.records:
            console.print(f"{result.name} {result.type} {record}{via}")
        if not result.records and record_type:
            console.print(f"{name} has no {result.type} record")


@app.command()
def mx(
    domain: Annotated[
        str, typer.Argument(help="The mail domain, e.g. example.com.", callback=_check_name)
    ],
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Where mail for DOMAIN goes: MX by preference, else the domain's own address."""
    from wirelab.dns.client import mail_routes, make_resolver

    resolver = _resolver(server) or make_resolver(None)
    routes = mail_routes(domain, resolver=resolver)
    if json_output:
        print_json(
            {
                "domain": routes.domain,
                "null_mx": routes.null_mx,
                "implicit": routes.implicit,
                "hosts": [
                    {
                        "preference": h.preference,
                        "exchange": h.exchange,
                        "canonical": h.canonical,
                        "addresses": list(h.addresses),
                        "error": h.error,
                    }
                    for h in routes.hosts
                ],
            }
        )
        return
    if routes.null_mx:
        console.print(f"{domain} accepts no mail (null MX, RFC 7505)")
        return
    if routes.implicit:
        console.print(f"{domain} has no MX record; mail goes to the domain itself:")
    else:
        console.print(f"mail for {domain} goes to, in order:")
    for host in routes.hosts:
        alias = f" (alias of {host.canonical})" if host.canonical != host.exchange else ""
        where = ", ".join(host.addresses) if host.addresses else f"unreachable: {host.error}"
        console.print(f"  {host.preference:>3}  {host.exchange}{alias}  {where}")


@app.command()
def addrinfo(
    host: HostArgument,
    service: Annotated[
        str,
        typer.Argument(help="Port number or service name (https, domain).", callback=check_port),
    ],
    udp: Annotated[bool, typer.Option("--udp", help="Datagram sockets instead of stream.")] = False,
    server: ServerOption = None,
    system: SystemOption = False,
    json_output: JsonOption = False,
) -> None:
    """The getaddrinfo view of HOST and SERVICE: socket arguments and the canonical name."""
    import socket

    from wirelab.dns.names import addrinfo as get_addrinfo

    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    report = get_addrinfo(host, service, resolver=_names_resolver(server, system), type=kind)
    rows = [
        {
            "family": info.family.name,
            "type": info.type.name,
            "address": info.host,
            "port": info.port,
        }
        for info in report.infos
    ]
    if json_output:
        print_json(
            {"host": host, "port": report.port, "canonical": report.canonical, "via": report.via}
            | {"addresses": rows}
        )
        return
    console.print(f"{host} port {report.port}: canonical name {report.canonical}")
    console.print(f"resolved by {report.via}")
    for row in rows:
        console.print(f"  {row['family']:<9} {row['type']:<12} {row['address']} port {row['port']}")


def _default_service(host: str) -> str:
    """The lab's TCP port for ``host`` when a lab runs and plays it, else the book's ``www``."""
    state = lab_state()
    if state is not None:
        for endpoint in state.endpoints:
            if endpoint.host == host.rstrip(".").lower() and endpoint.protocol == "tcp":
                return str(endpoint.port)
    return "http"


@app.command()
def ping(
    host: HostArgument,
    service: Annotated[
        str | None,
        typer.Argument(
            help="Port or service name. Default: the lab's port for HOST, else http.",
            callback=check_port,
        ),
    ] = None,
    timeout: TimeoutOption = 3.0,
    server: ServerOption = None,
    system: SystemOption = False,
    json_output: JsonOption = False,
) -> None:
    """Resolve, then connect to every address in turn: name-service or network failure?"""
    from wirelab.dns.names import ping as do_ping
    from wirelab.errors import ConnectError

    chosen = service or _default_service(host)
    report = do_ping(host, chosen, resolver=_names_resolver(server, system), timeout=timeout)
    if json_output:
        print_json(
            {
                "host": host,
                "canonical": report.canonical,
                "port": report.port,
                "via": report.via,
                "ok": report.ok,
                "attempts": [
                    {"address": a.address, "ok": a.ok, "seconds": round(a.seconds, 4)}
                    | {"error": a.error}
                    for a in report.attempts
                ],
            }
        )
    else:
        for attempt in report.attempts:
            if not attempt.ok:
                console.print(f"  {attempt.address}: {attempt.error}")
        good = next((a for a in report.attempts if a.ok), None)
        if good is not None:
            console.print(
                f"Success: host {report.canonical} is listening on port {report.port} "
                f"(at {good.address})"
            )
    if not report.ok:
        raise ConnectError(
            f"network failure: the name resolved, but nothing accepted a connection on port "
            f"{report.port} at any of its {len(report.attempts)} addresses"
        )


@app.command()
def name(
    host: Annotated[
        str, typer.Argument(help="Host name, e.g. mail.example.com.", callback=_check_name)
    ],
    server: ServerOption = None,
    system: SystemOption = False,
    json_output: JsonOption = False,
) -> None:
    """The IPv4 address of HOST (the book's getname)."""
    from wirelab.dns.names import host_address

    address, via = host_address(host, resolver=_names_resolver(server, system))
    if json_output:
        print_json({"host": host, "address": address, "via": via})
        return
    console.print(f"The IP address of {host} is {address}")
    err_console.print(f"(resolved by {via})")
