"""Servers the playground runs inside its hosts: ``python -m wirelab.playground.hostd dns``.

The backbone's DNS is the lab's own DNS server (:mod:`wirelab.dns.server`) with the
playground's zone: every host of the book's ``dns/hosts`` under ``example.com`` with its
playground address, the MX and CNAME records of ``mx-entries``, all in one loaded place (the
book's split configuration may never have loaded its second file).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from wirelab.dns.zone import DEFAULT_TTL, NAME_SERVER, ORIGIN, Record, Zone
from wirelab.playground.topology import HOSTS

__all__ = ["main", "playground_zone"]


def playground_zone(serial: int = 2014_03_25) -> Zone:
    """``example.com`` as the playground's backbone serves it."""
    zone = Zone(ORIGIN)
    soa = (NAME_SERVER, "hostmaster.example.com", serial, 3600, 600, 86400, DEFAULT_TTL)
    zone.add(Record(ORIGIN, "SOA", soa))
    zone.add(Record(ORIGIN, "NS", NAME_SERVER))
    zone.add(Record(ORIGIN, "MX", (10, "mail.example.com")))
    zone.add(Record("www.example.com", "MX", (10, "smtp.example.com")))
    zone.add(Record("smtp.example.com", "CNAME", "mail.example.com"))
    for h in HOSTS:
        name = h.fqdn if h.fqdn.endswith(ORIGIN) else f"{h.fqdn}.{ORIGIN}"
        zone.add(Record(name.lower(), "A", h.address))
    return zone


async def _serve_dns(host: str, port: int) -> None:
    from wirelab.dns.server import open_dns_server

    server = await open_dns_server(playground_zone(), host, port, port)
    print(f"listening at {host}:{port} (playground DNS)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``dns [HOST [PORT]]``: serve the playground zone until killed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "dns":
        print("usage: python -m wirelab.playground.hostd dns [HOST [PORT]]", file=sys.stderr)
        return 2
    host = args[1] if len(args) > 1 else "10.1.1.1"
    port = int(args[2]) if len(args) > 2 else 53
    try:
        asyncio.run(_serve_dns(host, port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
