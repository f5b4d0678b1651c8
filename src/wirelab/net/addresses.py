"""Addresses: host and service names to sockets, through ``getaddrinfo`` (RFC 3493).

The book's rule (chapter 4): never build socket arguments by hand; ask ``getaddrinfo`` and try
what it returns. This module does that for connecting and listening, over IPv4 and IPv6, and
turns failures into errors that tell the name service apart from the network (F17, F18):

* :class:`~wirelab.errors.NameResolutionError` - the name or service did not resolve;
* :class:`~wirelab.errors.ConnectionRefused` - it resolved, and the peer refused;
* :class:`~wirelab.errors.ConnectError` / :class:`~wirelab.errors.Timeout` - it resolved,
  and the network did not get us there.

Ports may be numbers or service names (``"domain"``, ``"http"``), as with ``-p domain``.

While a lab runs, the book's playground names are the lab's: ``example.com`` and every name
under it (``www.example.com``, ``mail.example.com``, ``ftp.example.com`` ...) resolve to the
address the lab listens on, read from the lab's state file (:func:`lab_address`), so every
client reaches the lab by the names the book uses. RFC 2606 reserves the domain for examples;
with no lab running, names resolve as usual.
"""

from __future__ import annotations

import errno
import math
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wirelab.errors import (
    ConfigError,
    ConnectError,
    ConnectionRefused,
    NameResolutionError,
    Timeout,
    TransportError,
)
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT

__all__ = [
    "LAB_DOMAIN",
    "AddrInfo",
    "bind_udp",
    "connect_tcp",
    "connect_udp",
    "format_address",
    "lab_address",
    "lab_names_everywhere",
    "listen_tcp",
    "parse_port",
    "resolve",
]

_SOCKTYPE_PROTO = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}

#: The book's playground domain: while a lab runs, it and every name under it are the lab.
LAB_DOMAIN = "example.com"

#: A lab bound to every interface is reached over loopback.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class AddrInfo:
    """One answer of ``getaddrinfo``: what to pass to ``socket()`` and ``connect()``."""

    family: socket.AddressFamily
    type: socket.SocketKind
    proto: int
    canonname: str
    sockaddr: tuple[str, int] | tuple[str, int, int, int]

    @property
    def host(self) -> str:
        """The numeric address."""
        return self.sockaddr[0]

    @property
    def port(self) -> int:
        """The port number."""
        return self.sockaddr[1]

    def socket(self) -> socket.socket:
        """Return a new, unconnected socket for this address."""
        return socket.socket(self.family, self.type, self.proto)


def parse_port(value: str | int, proto: str = "tcp") -> int:
    """Turn a port number or a service name (``"domain"``, ``"smtp"``) into a port number.

    Args:
        value: ``1060``, ``"1060"`` or a name from the services database.
        proto: ``"tcp"`` or ``"udp"``, for the service-name lookup.

    Raises:
        ConfigError: the number is out of range or the service name is unknown.
    """
    if isinstance(value, int):
        port = value
    else:
        text = value.strip()
        if text.isdigit():
            port = int(text)
        else:
            try:
                return socket.getservbyname(text, proto)
            except OSError as exc:
                raise ConfigError(f"unknown service name {text!r} for {proto}") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range 0-65535")
    return port


def _same_network(pid: int) -> bool:
    """Whether process ``pid`` shares our network namespace (True when we cannot tell)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError:
        return True


def lab_address(host: str) -> str | None:
    """The running lab's address for a playground name (``mail.example.com``), else ``None``.

    A name a lab service plays (its endpoints carry ``host``) gets that service's address;
    any other name in :data:`LAB_DOMAIN` gets the address the lab listens on. ``None`` for
    names outside the domain, when no lab runs, or from another network namespace (a
    playground host, where the names are the playground's).
    """
    name = host.rstrip(".").lower()
    if name != LAB_DOMAIN and not name.endswith("." + LAB_DOMAIN):
        return None
    from wirelab.lab.state import LabState  # the lab layer sits above this module

    try:
        state = LabState.load()
    except ConfigError:
        return None
    if not _same_network(state.pid):  # a playground host: its own loopback, its own names
        return None
    endpoints = [ep for ep in state.endpoints if ep.host.lower() == name] or list(state.endpoints)
    if not endpoints:
        return None
    address = endpoints[0].address
    return _WILDCARDS.get(address, address)


#: The system's ``getaddrinfo``, before :func:`lab_names_everywhere` wraps it.
_system_getaddrinfo = socket.getaddrinfo


def lab_names_everywhere() -> None:
    """Make every library in this process resolve the playground names to the running lab.

    Clients built on the standard library or on third-party libraries (``ftplib``,
    ``http.client``, ``requests``, ``smtplib`` ...) call ``socket.getaddrinfo`` themselves,
    not :func:`resolve`; this wraps it so that it asks :func:`lab_address` first. Host names
    stay as they are everywhere else, so TLS still verifies the certificate against the name
    the user gave. The ``wirelab`` command calls it once at start; a program that imports
    wirelab as a library is left alone unless it calls this itself. Idempotent.
    """
    if getattr(socket.getaddrinfo, "_wirelab_lab_names", False):
        return

    def getaddrinfo(
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if isinstance(host, str) and host:
            host = lab_address(host) or host
        return _system_getaddrinfo(host, port, family, type, proto, flags)

    getaddrinfo._wirelab_lab_names = True  # type: ignore[attr-defined]
    socket.getaddrinfo = getaddrinfo


def resolve(
    host: str | None,
    port: str | int,
    *,
    type: socket.SocketKind = socket.SOCK_STREAM,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    flags: int = 0,
    lab_names: bool = True,
) -> list[AddrInfo]:
    """Resolve ``host`` and ``port`` with ``getaddrinfo``, in the order it gives.

    A playground name resolves to the running lab (:func:`lab_address`), unless
    ``lab_names`` is false (to show what the system's resolver says, as ``dns --system``).

    Raises:
        NameResolutionError: the host or the service name did not resolve.
    """
    proto_name = _SOCKTYPE_PROTO.get(type, "tcp")
    port_number = parse_port(port, proto_name)
    if host and lab_names:
        host = lab_address(host) or host
    try:
        infos = _system_getaddrinfo(host, port_number, family, type, 0, flags)
    except socket.gaierror as exc:
        raise NameResolutionError(
            f"name service failure for {host!r}: {exc.strerror or exc}"
        ) from exc
    except UnicodeError as exc:
        raise NameResolutionError(f"invalid host name {host!r}: {exc}") from exc
    return [
        AddrInfo(fam, kind, proto, canon, addr)  # type: ignore[arg-type]
        for fam, kind, proto, canon, addr in infos
    ]


def format_address(sockaddr: Sequence[object]) -> str:
    """``("127.0.0.1", 1060)`` -> ``127.0.0.1:1060``; IPv6 gets brackets: ``[::1]:1060``."""
    host, port = str(sockaddr[0]), sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _classify(exc: OSError, target: str) -> TransportError:
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return Timeout(f"network failure: connecting to {target} timed out")
    if exc.errno == errno.ECONNREFUSED:
        return ConnectionRefused(f"network failure: {target} refused the connection")
    return ConnectError(f"network failure: cannot reach {target}: {exc.strerror or exc}")


def connect_tcp(
    host: str,
    port: str | int,
    *,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    family: socket.AddressFamily = socket.AF_UNSPEC,
) -> socket.socket:
    """Connect to the first address of ``host`` that answers (each one tried in turn).

    The returned socket keeps ``timeout`` as its I/O timeout.

    Raises:
        ConfigError: the timeout is not a finite number of seconds above zero.
        NameResolutionError: the name did not resolve.
        ConnectionRefused, ConnectError, Timeout: every address failed; the last error wins.
    """
    if not (math.isfinite(timeout) and timeout > 0):  # settimeout(inf) is an OverflowError
        raise ConfigError(f"a timeout is a finite number of seconds above zero, not {timeout}")
    infos = resolve(host, port, type=socket.SOCK_STREAM, family=family)
    last: TransportError | None = None
    for info in infos:
        sock = info.socket()
        try:
            sock.settimeout(timeout)
            sock.connect(info.sockaddr)
        except OSError as exc:
            sock.close()
            err = _classify(exc, format_address(info.sockaddr))
            err.__cause__ = exc
            last = err
            continue
        return sock
    assert last is not None, "getaddrinfo returned no address"
    raise last


def connect_udp(
    host: str,
    port: str | int,
    *,
    family: socket.AddressFamily = socket.AF_UNSPEC,
) -> socket.socket:
    """Return a UDP socket ``connect()``-ed to ``host``: the kernel filters replies by source.

    Raises:
        NameResolutionError: the name did not resolve.
        ConnectError: no address could be used.
    """
    infos = resolve(host, port, type=socket.SOCK_DGRAM, family=family)
    last: OSError | None = None
    for info in infos:
        sock = info.socket()
        try:
            sock.connect(info.sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise ConnectError(f"network failure: cannot use any address of {host!r}") from last


def _passive_infos(host: str | None, port: str | int, kind: socket.SocketKind) -> list[AddrInfo]:
    return resolve(host, port, type=kind, flags=socket.AI_PASSIVE)


def listen_tcp(
    host: str | None,
    port: str | int,
    *,
    backlog: int = 128,
    reuse_port: bool = False,
) -> socket.socket:
    """Return a listening TCP socket with ``SO_REUSEADDR`` set.

    ``host=None`` or ``"::"`` listens on every address, IPv4 and IPv6 (dual stack) where the
    platform allows it; callers pass that only when the user asked for it. Otherwise the
    first address ``getaddrinfo`` gives for ``host`` is used (loopback for the lab).

    Raises:
        NameResolutionError: the host name did not resolve.
        ConnectError: the address could not be bound (in use, not ours ...).
    """
    number = parse_port(port, "tcp")
    if host in (None, "", "::") and socket.has_dualstack_ipv6():
        try:
            return socket.create_server(
                ("::", number),
                family=socket.AF_INET6,
                backlog=backlog,
                reuse_port=reuse_port,
                dualstack_ipv6=True,
            )
        except OSError as exc:
            raise ConnectError(f"cannot listen on [::]:{number}: {exc.strerror or exc}") from exc
    info = _passive_infos(host or None, number, socket.SOCK_STREAM)[0]
    try:
        return socket.create_server(
            info.sockaddr[:2] if info.family == socket.AF_INET else info.sockaddr,
            family=info.family,
            backlog=backlog,
            reuse_port=reuse_port,
        )
    except OSError as exc:
        where = format_address(info.sockaddr)
        raise ConnectError(f"cannot listen on {where}: {exc.strerror or exc}") from exc


def bind_udp(host: str | None, port: str | int, *, broadcast: bool = False) -> socket.socket:
    """Return a UDP socket bound to ``host``:``port``.

    ``host=""`` binds every IPv4 address, which is what receiving broadcasts needs.

    Raises:
        NameResolutionError: the host name did not resolve.
        ConnectError: the address could not be bound.
    """
    number = parse_port(port, "udp")
    if host == "":
        family, sockaddr = socket.AF_INET, ("", number)
    else:
        info = _passive_infos(host, number, socket.SOCK_DGRAM)[0]
        family, sockaddr = info.family, info.sockaddr  # type: ignore[assignment]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        where = format_address(sockaddr)
        raise ConnectError(f"cannot bind UDP {where}: {exc.strerror or exc}") from exc
    return sock
