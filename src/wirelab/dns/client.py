"""Chapter 4 DNS clients on dnspython (RFC 1034, RFC 1035; mail routing RFC 5321, RFC 7505).

Which server answers: an explicit ``--server HOST[:PORT]``; else the running lab's DNS server
(its address is in the lab state file); else the system's resolvers from ``/etc/resolv.conf``.
Every query has a per-attempt timeout and an overall lifetime; dnspython retries a silent
server with a doubling pause between rounds (0.1 s, 0.2 s ... capped at 2 s) until the
lifetime ends, then we raise :class:`~wirelab.errors.Timeout` naming the server.

The book's ``dns_basic`` and ``dns_mx`` used the deprecated ``query()``; this module uses
``resolve()``, tolerates empty answers, reports NXDOMAIN, follows CNAME targets through
``.target`` (not ``.address``), shuffles equal-preference MX hosts and honours null MX.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from wirelab.errors import ConfigError, NameResolutionError, Timeout

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_TIMEOUT",
    "RECORD_TYPES",
    "HostAddresses",
    "Lookup",
    "MailHost",
    "MailRoutes",
    "NoSuchDomain",
    "Server",
    "ServerFailure",
    "choose_server",
    "lookup",
    "lookup_all",
    "mail_routes",
    "make_resolver",
    "parse_server",
    "resolve_host",
    "split_server",
]

log = logging.getLogger(__name__)

#: Seconds one query attempt waits for an answer.
DEFAULT_TIMEOUT = 1.0

#: Seconds all attempts of one lookup may take together.
DEFAULT_LIFETIME = 4.0

#: The record types ``wirelab dns lookup`` shows by default (the book's dns_basic).
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT")


class NoSuchDomain(NameResolutionError):
    """The server said the name does not exist (NXDOMAIN)."""


class ServerFailure(NameResolutionError):
    """Every server refused or failed the query (REFUSED, SERVFAIL): e.g. outside its zone."""


@dataclass(frozen=True)
class Server:
    """A DNS server to ask: a numeric address and a port."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        return (
            f"[{self.address}]:{self.port}"
            if ":" in self.address
            else f"{self.address}:{self.port}"
        )


def split_server(text: str) -> tuple[str, int]:
    """Split ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address (no lookup).

    Raises:
        ConfigError: the text has no host, or a port that is not 1-65535.
    """
    value = text.strip()
    host, port = value, 53
    if value.startswith("["):
        inside, _, rest = value[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad DNS server {text!r}: expected [ADDRESS]:PORT")
            port = _port(rest[1:], text)
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        port = _port(number, text)
    if not host:
        raise ConfigError(f"bad DNS server {text!r}: no host")
    return host, port


def parse_server(text: str) -> Server:
    """Parse ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address.

    A host name is turned into an address with the system resolver.

    Raises:
        ConfigError: the text is not a usable server.
    """
    host, port = split_server(text)
    try:
        return Server(str(ipaddress.ip_address(host)), port)
    except ValueError:
        pass
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"cannot resolve the DNS server {host!r}: {exc}") from exc
    return Server(str(address), port)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise ConfigError(f"bad DNS server {whole!r}: port must be 1-65535")
    return int(text)


def choose_server(server: str | None) -> Server | None:
    """The server to ask: ``server`` if given, else the running lab's, else ``None`` (system)."""
    if server:
        return parse_server(server)
    from wirelab.lab.state import LabState

    try:
        state = LabState.load()
        endpoint = state.endpoint("dns", "udp")
    except ConfigError:
        return None
    return Server(endpoint.address, endpoint.port)


def make_resolver(
    server: Server | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    lifetime: float = DEFAULT_LIFETIME,
) -> dns.resolver.Resolver:
    """A dnspython resolver asking ``server`` (``None``: the system's configured servers).

    Raises:
        ConfigError: no server given and the system has no resolver configuration.
    """
    try:
        resolver = dns.resolver.Resolver(configure=server is None)
    except dns.resolver.NoResolverConfiguration as exc:
        raise ConfigError(f"no system DNS configuration: {exc}; pass --server") from exc
    if server is not None:
        resolver.nameservers = [server.address]
        resolver.port = server.port
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    resolver.cache = None
    return resolver


def _describe(resolver: dns.resolver.Resolver) -> str:
    servers = ", ".join(str(ns) for ns in resolver.nameservers)
    return f"{servers} port {resolver.port}" if resolver.port != 53 else servers


def _resolve(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> dns.resolver.Answer | None:
    """Ask once; ``None`` for "the name exists but has no such record"."""
    try:
        return resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN as exc:
        raise NoSuchDomain(f"no such domain: {name} (NXDOMAIN)") from exc
    except dns.resolver.LifetimeTimeout as exc:
        raise Timeout(
            f"the DNS server {_describe(resolver)} did not answer for {name} "
            f"within {resolver.lifetime:g} s (retried with backoff)"
        ) from exc
    except dns.resolver.NoNameservers as exc:
        raise ServerFailure(
            f"name service failure for {name}: the server {_describe(resolver)} "
            "refused or failed the query"
        ) from exc
    except dns.name.NameTooLong as exc:
        raise NameResolutionError(f"invalid name {name!r}: too long") from exc
    except dns.exception.DNSException as exc:
        raise NameResolutionError(f"name service failure for {name}: {exc}") from exc


@dataclass(frozen=True)
class Lookup:
    """The records of one type for one name."""

    name: str
    type: str
    canonical: str
    records: tuple[str, ...]
    ttl: int | None


def lookup(name: str, rdtype: str, *, resolver: dns.resolver.Resolver) -> Lookup:
    """Return ``name``'s records of ``rdtype`` (an empty tuple when it has none).

    Raises:
        NoSuchDomain: the name does not exist.
        NameResolutionError, Timeout: the server failed or did not answer.
    """
    kind = rdtype.upper()
    try:
        dns.rdatatype.from_text(kind)
    except dns.rdatatype.UnknownRdatatype as exc:
        raise ConfigError(f"unknown record type {rdtype!r}") from exc
    answer = _resolve(resolver, name, kind)
    if answer is None or answer.rrset is None:
        return Lookup(name, kind, name, (), None)
    canonical = answer.canonical_name.to_text(omit_final_dot=True)
    records = tuple(sorted(rdata.to_text() for rdata in answer.rrset))
    return Lookup(name, kind, canonical, records, answer.rrset.ttl)


def lookup_all(
    name: str, *, resolver: dns.resolver.Resolver, types: Sequence[str] = RECORD_TYPES
) -> list[Lookup]:
    """The book's ``dns_basic``: every listed type for ``name``, empty ones included.

    Raises:
        NoSuchDomain: the name does not exist.
    """
    return [lookup(name, kind, resolver=resolver) for kind in types]


@dataclass(frozen=True)
class HostAddresses:
    """Where a host name leads: its canonical name (after CNAMEs) and its addresses."""

    name: str
    canonical: str
    addresses: tuple[str, ...]


def resolve_host(name: str, *, resolver: dns.resolver.Resolver) -> HostAddresses:
    """Resolve A, then AAAA, each tolerated when empty; CNAMEs are followed to the target.

    Raises:
        NoSuchDomain: the name does not exist.
        NameResolutionError: it exists but has no address.
    """
    canonical = name
    addresses: list[str] = []
    for kind in ("A", "AAAA"):
        answer = _resolve(resolver, name, kind)
        if answer is not None and answer.rrset is not None:
            canonical = answer.canonical_name.to_text(omit_final_dot=True)
            addresses.extend(rdata.address for rdata in answer.rrset)
    if not addresses:
        raise NameResolutionError(f"name service failure: {name} has no A or AAAA record")
    return HostAddresses(name, canonical, tuple(addresses))


@dataclass(frozen=True)
class MailHost:
    """One place to deliver mail for a domain."""

    preference: int
    exchange: str
    canonical: str
    addresses: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class MailRoutes:
    """Where mail for ``domain`` goes, in the order a sender tries.

    ``implicit`` means the domain had no MX and its own address is used (RFC 5321 section
    5.1); ``null_mx`` means the domain says it accepts no mail at all (RFC 7505).
    """

    domain: str
    hosts: tuple[MailHost, ...] = ()
    implicit: bool = False
    null_mx: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def mail_routes(
    domain: str, *, resolver: dns.resolver.Resolver, rng: random.Random | None = None
) -> MailRoutes:
    """The book's ``dns_mx``, fixed: where to send mail for ``domain``.

    MX records sorted by preference, equal preferences shuffled (RFC 5321 section 5.1), each
    exchange resolved to addresses (A and AAAA; a CNAME target is followed). No MX: the
    domain's own A/AAAA. A single MX ``0 .``: the domain accepts no mail (RFC 7505).

    Raises:
        NoSuchDomain: the domain does not exist.
        NameResolutionError, Timeout: the server failed or did not answer.
    """
    rng = rng or random.Random()
    answer = _resolve(resolver, domain, "MX")
    records = list(answer.rrset) if answer is not None and answer.rrset is not None else []
    if len(records) == 1 and records[0].exchange == dns.name.root:
        return MailRoutes(domain, null_mx=True)
    if not records:
        target = resolve_host(domain, resolver=resolver)
        host = MailHost(0, domain, target.canonical, target.addresses)
        return MailRoutes(domain, (host,), implicit=True)
    by_preference: dict[int, list[str]] = {}
    for rdata in records:
        if rdata.exchange == dns.name.root:
            continue  # a "." among real MX records is meaningless; RFC 7505 section 3
        name = rdata.exchange.to_text(omit_final_dot=True)
        by_preference.setdefault(int(rdata.preference), []).append(name)
    hosts: list[MailHost] = []
    for preference in sorted(by_preference):
        names = sorted(by_preference[preference])
        rng.shuffle(names)
        for name in names:
            try:
                target = resolve_host(name, resolver=resolver)
            except NameResolutionError as exc:
                hosts.append(MailHost(preference, name, name, (), str(exc)))
                continue
            hosts.append(MailHost(preference, name, target.canonical, target.addresses))
    return MailRoutes(domain, tuple(hosts))
