"""The ``Service`` contract: what a lab server declares and how it reports readiness.

A service binds first, reports the addresses it really bound through ``started``, then
serves until cancelled (trio's ``serve_listeners`` habit). Blocking servers run in a thread or
a child process behind the same coroutine. A service that cannot run on this machine raises
:class:`~wirelab.errors.ServiceUnavailable` with a one-line hint before it binds anything;
the lab reports it and keeps the others running.
"""

from __future__ import annotations

import abc
import asyncio
import asyncio.trsock
import functools
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from wirelab.config import LAB_ACCOUNTS, LOOPBACK, Account, default_port
from wirelab.net.ca import LabCA
from wirelab.net.server import close_listener, listener_socket
from wirelab.net.tlsctx import client_context, server_context

__all__ = [
    "BoundEndpoint",
    "DeclaredService",
    "Endpoint",
    "LabContext",
    "Opener",
    "Service",
    "Started",
]


@dataclass(frozen=True)
class BoundEndpoint:
    """One address a lab service really listens on."""

    service: str
    endpoint: str
    host: str
    address: str
    port: int
    protocol: str
    tls: bool = False

    @property
    def name(self) -> str:
        """``service`` alone when the endpoint is named after it, else ``service.endpoint``."""
        if self.endpoint == self.service:
            return self.service
        return f"{self.service}.{self.endpoint}"

    @property
    def sockaddr(self) -> tuple[str, int]:
        """``(address, port)``, ready for ``connect()``."""
        return (self.address, self.port)

    def to_json(self) -> dict[str, Any]:
        """Return the state-file form."""
        return {
            "name": self.name,
            "service": self.service,
            "endpoint": self.endpoint,
            "host": self.host,
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            "tls": self.tls,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoundEndpoint:
        """Read the state-file form."""
        return cls(
            service=str(data["service"]),
            endpoint=str(data["endpoint"]),
            host=str(data["host"]),
            address=str(data["address"]),
            port=int(data["port"]),
            protocol=str(data["protocol"]),
            tls=bool(data.get("tls", False)),
        )


#: What a service calls once it has bound: the endpoints it listens on.
Started = Callable[[Sequence[BoundEndpoint]], None]


@dataclass
class LabContext:
    """What the lab gives every service: where to bind, which ports, TLS material, options.

    Attributes:
        state_dir: the lab's directory (state file, CA, logs, data of services).
        bind_host: the address every service binds (loopback unless the user asked).
        ephemeral: bind port 0 everywhere (tests) instead of the documented defaults.
        accounts: the lab logins.
        options: per-service options from the command line (``{"memcached": 2}`` ...).
    """

    state_dir: Path
    bind_host: str = LOOPBACK
    ephemeral: bool = False
    accounts: tuple[Account, ...] = LAB_ACCOUNTS
    options: dict[str, Any] = field(default_factory=dict)

    def port(self, service: str, endpoint: str) -> int:
        """Return the port ``service``'s ``endpoint`` should bind (0 in ephemeral mode)."""
        return 0 if self.ephemeral else default_port(service, endpoint)

    @functools.cached_property
    def ca(self) -> LabCA:
        """The lab CA (created on first use in ``state_dir/ca``)."""
        return LabCA.load_or_create(self.state_dir / "ca")

    def server_ssl_context(self, hostnames: Sequence[str]) -> ssl.SSLContext:
        """A server context with a lab-CA certificate for ``hostnames`` (and loopback IPs)."""
        cert, key = self.ca.server_cert_for(list(hostnames), self.state_dir / "ca")
        return server_context(cert, key)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the lab CA."""
        return client_context(cafile=self.ca.cert_path)

    def endpoint(
        self,
        service: Service,
        endpoint: str,
        sock: socket.socket | asyncio.trsock.TransportSocket,
        *,
        tls: bool = False,
    ) -> BoundEndpoint:
        """Describe a bound socket of ``service`` (or an asyncio transport's socket)."""
        address, port = sock.getsockname()[:2]
        protocol = "udp" if sock.type == socket.SOCK_DGRAM else "tcp"
        return BoundEndpoint(service.name, endpoint, service.host, address, port, protocol, tls)


class Service(abc.ABC):
    """A lab server. Subclasses set the class attributes and implement :meth:`serve`.

    Attributes:
        name: short name, also the CLI topic where there is one (``"udp"``).
        host: the host name it plays in the book's playground (``"www.example.com"``).
        chapter: the book chapter it serves.
        description: one line for ``wirelab lab status``.
    """

    name: ClassVar[str]
    host: ClassVar[str] = "example.com"
    chapter: ClassVar[int]
    description: ClassVar[str] = ""

    @abc.abstractmethod
    async def serve(self, lab: LabContext, started: Started) -> None:
        """Bind, call ``started(endpoints)``, then serve until cancelled.

        Raises:
            ServiceUnavailable: before binding, when the service cannot run here.
            Exception: a bind or start error, as it is; the supervisor surfaces it.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


#: Opens one endpoint: called with ``(bind_host, port)``, returns what listens there (a
#: :class:`~wirelab.net.server.ConnectionServer`, an asyncio server or transport, a
#: ``(transport, protocol)`` pair ...: see :func:`~wirelab.net.server.listener_socket`).
Opener = Callable[[str, int], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a :class:`DeclaredService`.

    Attributes:
        name: the endpoint's name (``"sixteen"``); its port is ``lab.port(service, name)``.
        open: the opener, called with the lab's bind host and that port.
        tls: whether clients must speak TLS to it.
    """

    name: str
    open: Opener
    tls: bool = False


class DeclaredService(Service):
    """A service that is a declaration: which endpoints, and how to open each.

    :meth:`serve` opens the endpoints in order (closing those already open if one fails),
    reports them all, serves until cancelled, and closes them in reverse order::

        class TCPService(DeclaredService):
            name = "tcp"
            chapter = 3

            def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
                from wirelab.tcp.server import open_sixteen_server, open_upper_server

                return (
                    Endpoint("sixteen", open_sixteen_server),
                    Endpoint("upper", open_upper_server),
                )
    """

    @abc.abstractmethod
    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        """The endpoints to open, in order (import the servers here, lazily)."""

    async def serve(self, lab: LabContext, started: Started) -> None:
        opened: list[tuple[Endpoint, Any]] = []
        try:
            for endpoint in self.endpoints(lab):
                port = lab.port(self.name, endpoint.name)
                opened.append((endpoint, await endpoint.open(lab.bind_host, port)))
            started(
                [
                    lab.endpoint(self, endpoint.name, listener_socket(listener), tls=endpoint.tls)
                    for endpoint, listener in opened
                ]
            )
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            for _, listener in reversed(opened):
                await close_listener(listener)
