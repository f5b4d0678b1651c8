"""Socket names (RFC 3493 getaddrinfo): from a host and a service to addresses and connections.

The book's ``www_ping`` and ``getname`` (F05, F17, F18), fixed: every address is tried with a
timeout, the port shown is the one really used, and a name-service failure is told apart from
a network failure.

A note on resolvers: the stdlib ``getaddrinfo`` asks the *system* resolver, which knows
nothing of the lab's ``example.com``. So when a DNS server is chosen (the running lab's, or
``--server``), the host name is first resolved through it with dnspython, and
``getaddrinfo`` is then called on each numeric address (``AI_NUMERICHOST``) to build the
socket arguments. A name the server refuses (outside its zone, e.g. ``localhost``) falls back
to the system resolver. Each report says which resolver answered (``via``).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import dns.resolver

from wirelab.dns.client import HostAddresses, ServerFailure, resolve_host
from wirelab.errors import NameResolutionError, TransportError
from wirelab.net.addresses import AddrInfo, connect_tcp, format_address, parse_port, resolve
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT

__all__ = ["AddrInfoReport", "Attempt", "PingReport", "addrinfo", "host_address", "ping"]

_SYSTEM = "the system resolver (getaddrinfo)"


@dataclass(frozen=True)
class AddrInfoReport:
    """What ``getaddrinfo`` gives for a host and service, and who resolved the name."""

    host: str
    port: int
    canonical: str
    via: str
    infos: tuple[AddrInfo, ...]


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def addrinfo(
    host: str,
    service: str | int,
    *,
    resolver: dns.resolver.Resolver | None = None,
    type: socket.SocketKind = socket.SOCK_STREAM,
) -> AddrInfoReport:
    """Resolve ``host`` and ``service`` into socket arguments, with the canonical name.

    Args:
        host: a host name or a numeric address.
        service: a port number or a service name (``"https"``, ``"domain"``).
        resolver: a DNS resolver to ask first (the lab's); ``None`` asks the system.
        type: ``SOCK_STREAM`` or ``SOCK_DGRAM``.

    Raises:
        NameResolutionError: the name (or the service name) did not resolve.
    """
    port = parse_port(service, "udp" if type == socket.SOCK_DGRAM else "tcp")
    if resolver is not None and not _is_numeric(host):
        try:
            found: HostAddresses | None = resolve_host(host, resolver=resolver)
        except ServerFailure:
            found = None  # outside the server's zone: let the system try
        if found is not None:
            infos: list[AddrInfo] = []
            for address in found.addresses:
                infos.extend(resolve(address, port, type=type, flags=socket.AI_NUMERICHOST))
            servers = ", ".join(str(ns) for ns in resolver.nameservers)
            via = f"DNS server {servers} port {resolver.port}"
            return AddrInfoReport(host, port, found.canonical, via, tuple(infos))
    # What the system's resolver says, as the user asked: not the lab's shortcut for names.
    infos = resolve(host, port, type=type, flags=socket.AI_CANONNAME, lab_names=False)
    canonical = next((i.canonname for i in infos if i.canonname), host)
    return AddrInfoReport(host, port, canonical, _SYSTEM, tuple(infos))


@dataclass(frozen=True)
class Attempt:
    """One connection attempt to one address."""

    address: str
    ok: bool
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class PingReport:
    """The book's ``www_ping``: did anything listen on the service, at which address."""

    host: str
    canonical: str
    port: int
    via: str
    attempts: tuple[Attempt, ...]

    @property
    def ok(self) -> bool:
        """True when some address accepted the connection."""
        return any(a.ok for a in self.attempts)


def ping(
    host: str,
    service: str | int,
    *,
    resolver: dns.resolver.Resolver | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    stop_at_first: bool = True,
) -> PingReport:
    """Resolve ``host`` (name service), then connect to its addresses in turn (network).

    A name-service failure raises; network failures are recorded per address in the report,
    so the caller can say which of the two went wrong (F18).

    Raises:
        NameResolutionError: the name or the service did not resolve.
    """
    report = addrinfo(host, service, resolver=resolver)
    attempts: list[Attempt] = []
    for info in report.infos:
        where = format_address(info.sockaddr)
        began = time.monotonic()
        try:
            with connect_tcp(info.host, info.port, timeout=timeout, family=info.family):
                pass
        except NameResolutionError:
            raise
        except (TransportError, OSError) as exc:  # a network failure: recorded, next address
            attempts.append(Attempt(where, False, time.monotonic() - began, str(exc)))
            continue
        attempts.append(Attempt(where, True, time.monotonic() - began))
        if stop_at_first:
            break
    return PingReport(host, report.canonical, report.port, report.via, tuple(attempts))


def host_address(host: str, *, resolver: dns.resolver.Resolver | None = None) -> tuple[str, str]:
    """The book's ``getname`` (F05): one IPv4 address for ``host`` and who gave it.

    Raises:
        NameResolutionError: the name did not resolve to an IPv4 address.
    """
    if _is_numeric(host):
        return host, "a numeric address (no lookup)"
    if resolver is not None:
        try:
            found = resolve_host(host, resolver=resolver)
        except ServerFailure:
            pass  # outside the server's zone: let the system try
        else:
            v4 = [a for a in found.addresses if ":" not in a]
            if not v4:
                raise NameResolutionError(f"name service failure: {host} has no IPv4 address")
            servers = ", ".join(str(ns) for ns in resolver.nameservers)
            return v4[0], f"DNS server {servers} port {resolver.port}"
    try:
        return socket.gethostbyname(host), "the system resolver (gethostbyname)"
    except (socket.gaierror, UnicodeError) as exc:
        raise NameResolutionError(f"name service failure for {host!r}: {exc}") from exc
