"""The lab's DNS server (chapter 4): authoritative for ``example.com``, over UDP and TCP.

Not a :class:`~wirelab.lab.service.DeclaredService` (one opener per endpoint): resolvers
retry a truncated answer over TCP at the *same* port, so with port 0 the UDP and TCP
endpoints are bound together by :func:`~wirelab.dns.server.open_dns_server`.
"""

from __future__ import annotations

import asyncio
import ipaddress

from wirelab.lab.service import LabContext, Service, Started

__all__ = ["SERVICES", "DNSService", "lab_addresses"]


def lab_addresses(bind_host: str) -> tuple[list[str], list[str]]:
    """The IPv4 and IPv6 addresses the zone's A and AAAA records give for ``bind_host``.

    A specific address is used as it is; a wildcard (``0.0.0.0``, ``::``) or a name maps to
    loopback. Every host also gets ``::1`` (or ``127.0.0.1``) so both record types exist.
    """
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return ["127.0.0.1"], ["::1"]
    if address.is_unspecified:
        return ["127.0.0.1"], ["::1"]
    if address.version == 4:
        return [str(address)], ["::1"]
    return ["127.0.0.1"], [str(address)]


class DNSService(Service):
    """The book's ``backbone`` resolver, as an authoritative server for the lab's zone."""

    name = "dns"
    host = "backbone.example.com"
    chapter = 4
    description = "DNS for example.com (chapter 4): every lab host name, MX, CNAME, NS, TXT"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.dns.server import open_dns_server
        from wirelab.dns.zone import lab_zone
        from wirelab.lab.registry import services

        ipv4, ipv6 = lab_addresses(lab.bind_host)
        zone = lab_zone([svc.host for svc in services()], ipv4=ipv4, ipv6=ipv6)
        udp_port = lab.port("dns", "udp")
        tcp_port = lab.port("dns", "tcp")
        server = await open_dns_server(zone, lab.bind_host, udp_port, tcp_port or None)
        try:
            tcp_socket = server.tcp.socket
            started(
                [
                    lab.endpoint(self, "udp", server.udp_socket),
                    lab.endpoint(self, "tcp", tcp_socket),
                ]
            )
            await asyncio.Event().wait()
        finally:
            await server.close()


SERVICES = (DNSService(),)
