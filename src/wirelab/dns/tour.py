"""Chapter 4 in the tour: getaddrinfo, DNS records, mail routing by MX, and what failed."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from wirelab.lab.tour import Chapter, TourContext

if TYPE_CHECKING:
    import dns.resolver

CHAPTER = Chapter(
    4,
    "Socket names and DNS",
    "Names become addresses through getaddrinfo and DNS; mail follows MX records.",
)


def _resolver(ctx: TourContext) -> dns.resolver.Resolver:
    from wirelab.dns.client import Server, make_resolver

    endpoint = ctx.lab.endpoint("dns", "udp")
    return make_resolver(Server(endpoint.address, endpoint.port))


@CHAPTER.step("the lab's DNS server answers for example.com (A, AAAA, MX, CNAME, NS, TXT)")
def _records(ctx: TourContext) -> None:
    from wirelab.dns.client import lookup_all

    resolver = _resolver(ctx)
    for name in ("example.com", "smtp.example.com"):
        for result in lookup_all(name, resolver=resolver):
            for record in result.records:
                ctx.say(f"{name} {result.type} {record}")
    mx = next(r for r in lookup_all("example.com", resolver=resolver) if r.type == "MX")
    ctx.check(mx.records == ("10 mail.example.com.",), f"unexpected MX {mx.records}")


@CHAPTER.step("every lab service's host name resolves to the lab")
def _hosts(ctx: TourContext) -> None:
    from wirelab.dns.client import resolve_host

    resolver = _resolver(ctx)
    hosts = sorted({ep.host for ep in ctx.lab.endpoints if ep.host.endswith("example.com")})
    for host in hosts:
        found = resolve_host(host, resolver=resolver)
        ctx.say(f"{host} -> {', '.join(found.addresses)}")
        lab_addresses = {ep.address for ep in ctx.lab.endpoints}
        ctx.check(lab_addresses & set(found.addresses), f"{host} does not point at the lab")


@CHAPTER.step("mail routing: MX by preference, an alias followed, null MX, A fallback")
def _mail(ctx: TourContext) -> None:
    from wirelab.dns.client import mail_routes

    resolver = _resolver(ctx)
    for domain in ("example.com", "www.example.com", "ftp.example.com", "nomail.example.com"):
        routes = mail_routes(domain, resolver=resolver)
        if routes.null_mx:
            ctx.say(f"{domain}: accepts no mail (null MX, RFC 7505)")
            continue
        how = "no MX, the domain itself" if routes.implicit else "MX"
        for host in routes.hosts:
            alias = f" (alias of {host.canonical})" if host.canonical != host.exchange else ""
            ctx.say(f"{domain}: {how} {host.preference} {host.exchange}{alias}")
    ctx.check(
        mail_routes("www.example.com", resolver=resolver).hosts[0].canonical == "mail.example.com",
        "the smtp alias was not followed",
    )


@CHAPTER.step("a big answer is truncated over UDP and fetched again over TCP")
def _truncation(ctx: TourContext) -> None:
    import dns.flags
    import dns.message
    import dns.query

    endpoint = ctx.lab.endpoint("dns", "udp")
    query = dns.message.make_query("many.example.com", "TXT")
    udp = dns.query.udp(query, endpoint.address, port=endpoint.port, timeout=3)
    tcp = dns.query.tcp(query, endpoint.address, port=endpoint.port, timeout=3)
    records = sum(len(r) for r in tcp.answer)
    ctx.say(
        f"over UDP: TC flag {'set' if udp.flags & dns.flags.TC else 'clear'}, "
        f"{len(udp.answer)} answers; over TCP: {records} TXT records"
    )
    ctx.check(udp.flags & dns.flags.TC and records == 40, "truncation did not work")


@CHAPTER.step("ANY gets one small answer, not every record (RFC 8482)")
def _any(ctx: TourContext) -> None:
    import dns.message
    import dns.query
    import dns.rdatatype

    endpoint = ctx.lab.endpoint("dns", "udp")
    query = dns.message.make_query("example.com", "ANY")
    reply = dns.query.udp(query, endpoint.address, port=endpoint.port, timeout=3)
    sent, got = len(query.to_wire()), len(reply.to_wire())
    for rrset in reply.answer:
        ctx.say(rrset.to_text())
    ctx.say(f"{sent} bytes asked, {got} bytes answered (every record would be 322: 11x)")
    hinfo = [r for r in reply.answer if r.rdtype == dns.rdatatype.HINFO]
    ctx.check(len(reply.answer) == 1 and hinfo and got < 2 * sent, "ANY was answered in full")


@CHAPTER.step("getaddrinfo, then connect: success, network failure, name failure")
def _ping(ctx: TourContext) -> None:
    from wirelab.dns.client import NoSuchDomain
    from wirelab.dns.names import addrinfo, ping

    resolver = _resolver(ctx)
    geo = ctx.lab.endpoint("geo", "https") if "geo" in ctx.lab.services() else None
    dns_tcp = ctx.lab.endpoint("dns", "tcp")
    target = geo or dns_tcp
    info = addrinfo(target.host, target.port, resolver=resolver, type=socket.SOCK_STREAM)
    for item in info.infos:
        ctx.say(f"getaddrinfo: {item.family.name} {item.host} port {item.port}")
    report = ping(target.host, target.port, resolver=resolver, timeout=2)
    good = [a for a in report.attempts if a.ok]
    ctx.say(f"Success: host {report.canonical} is listening on port {report.port}")
    ctx.check(good, "nothing answered")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
        refused = ping("mail.example.com", closed, resolver=resolver, timeout=2)
    ctx.say(f"port {closed}: network failure at all {len(refused.attempts)} addresses")
    ctx.check(not refused.ok, "a closed port answered")
    try:
        ping("nosuch.example.com", closed, resolver=resolver)
    except NoSuchDomain as exc:
        ctx.say(f"nosuch.example.com: {exc}")
    else:
        ctx.check(False, "an unknown name resolved")


CHAPTERS = (CHAPTER,)
