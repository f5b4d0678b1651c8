"""The book's playground as data: twelve hosts, three LANs, their addresses and routes.

The book (section "The network playground", ``launch.sh``) builds this with Docker; we build
the same network with Linux network namespaces (:mod:`wirelab.playground.netns`). Nothing
here touches the system: it only says what to build.

* ``h1``-``h3`` sit on the ``homeA`` LAN behind ``modemA``; ``h4`` sits on ``homeB`` behind
  ``modemB``. Both LANs reuse ``192.168.1.0/24`` and both modems masquerade (NAT).
* ``isp`` joins the two modems to the ``backbone``, which also serves DNS for example.com.
* ``example`` (``example.com``) is the gateway of the server room LAN ``exampleCOM``, which
  holds ``ftp``, ``mail`` and ``www``.

A LAN ("bridge" in the book) is a Linux bridge in a namespace of its own, so no interface of
the playground ever lives in the machine's own namespace: the playground is a closed world.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BRIDGES",
    "DNS_RECORDS",
    "HOSTS",
    "LINKS",
    "Host",
    "Link",
    "Port",
    "Route",
    "host",
    "path_between",
]


@dataclass(frozen=True)
class Route:
    """One static route: ``ip route add DEST [via GATEWAY] dev DEVICE``."""

    dest: str
    device: str
    via: str | None = None

    def argv(self) -> list[str]:
        """The arguments after ``ip route add``."""
        words = [self.dest]
        if self.via:
            words += ["via", self.via]
        return [*words, "dev", self.device]


@dataclass(frozen=True)
class Host:
    """One host: its interfaces' addresses (``{"eth0": ["10.25.1.65/16"]}``) and routes."""

    name: str
    role: str
    addresses: dict[str, tuple[str, ...]]
    routes: tuple[Route, ...] = ()
    forwarding: bool = False
    #: Masquerade (source NAT) whatever leaves through this interface.
    masquerade: str | None = None
    #: The host's fully qualified name in the playground DNS.
    fqdn: str = ""
    services: tuple[str, ...] = field(default_factory=tuple)

    @property
    def address(self) -> str:
        """The host's main IPv4 address (the first one of its first interface)."""
        first = next(iter(self.addresses.values()))
        return first[0].split("/")[0]


@dataclass(frozen=True)
class Port:
    """One end of a link: an interface of a host, or a port of a bridge (LAN)."""

    node: str
    device: str


@dataclass(frozen=True)
class Link:
    """A veth pair between two ports (a host-to-host wire, or a host plugged into a LAN)."""

    a: Port
    b: Port


HOSTS: tuple[Host, ...] = (
    *(
        Host(
            f"h{n}",
            "workstation",
            {"eth1": (f"192.168.1.1{n}/24",)},
            (Route("default", "eth1", "192.168.1.1"),),
            fqdn=f"h{n}",
        )
        for n in (1, 2, 3, 4)
    ),
    *(
        Host(
            f"modem{side}",
            "home NAT router",
            {"eth0": (f"10.25.1.{65 + i}/16",), "eth1": ("192.168.1.1/24",)},
            (Route("default", "eth0", "10.25.1.1"),),
            forwarding=True,
            masquerade="eth0",
            fqdn=f"modem{side}",
        )
        for i, side in enumerate("AB")
    ),
    Host(
        "isp",
        "ISP router",
        {"eth0": ("10.25.1.1/32",), "eth1": ("10.25.1.1/32",), "eth2": ("10.25.1.1/32",)},
        (
            Route("10.1.1.1", "eth0"),
            Route("10.25.1.65", "eth1"),
            Route("10.25.1.66", "eth2"),
            Route("default", "eth0", "10.1.1.1"),
        ),
        forwarding=True,
        fqdn="isp",
    ),
    Host(
        "backbone",
        "backbone router and DNS server",
        {"eth0": ("10.1.1.1/32",), "eth1": ("10.1.1.1/32",)},
        (
            Route("10.25.1.1", "eth0"),
            Route("10.25.0.0/16", "eth0", "10.25.1.1"),
            Route("10.130.1.1", "eth1"),
            Route("10.130.1.0/24", "eth1", "10.130.1.1"),
        ),
        forwarding=True,
        fqdn="backbone",
        services=("dns",),
    ),
    Host(
        "example",
        "example.com gateway",
        {"eth0": ("10.130.1.1/32",), "eth1": ("10.130.1.1/24",)},
        (Route("10.1.1.1", "eth0"), Route("default", "eth0", "10.1.1.1")),
        forwarding=True,
        fqdn="example.com",
    ),
    *(
        Host(
            name,
            role,
            {"eth0": (f"10.130.1.{last}/24",)},
            (Route("default", "eth0", "10.130.1.1"),),
            fqdn=f"{name}.example.com",
            services=services,
        )
        for name, role, last, services in (
            ("ftp", "FTP and Telnet server", 2, ("udp", "zen")),
            ("mail", "mail server", 3, ()),
            ("www", "web server", 4, ("udp",)),
        )
    ),
)

#: The three LANs (the book's Linux bridges), each a bridge ``br0`` in its own namespace.
BRIDGES: tuple[str, ...] = ("homeA", "homeB", "exampleCOM")

LINKS: tuple[Link, ...] = (
    *(Link(Port(f"h{n}", "eth1"), Port("homeA", f"h{n}")) for n in (1, 2, 3)),
    Link(Port("h4", "eth1"), Port("homeB", "h4")),
    Link(Port("modemA", "eth1"), Port("homeA", "modemA")),
    Link(Port("modemB", "eth1"), Port("homeB", "modemB")),
    Link(Port("modemA", "eth0"), Port("isp", "eth1")),
    Link(Port("modemB", "eth0"), Port("isp", "eth2")),
    Link(Port("isp", "eth0"), Port("backbone", "eth0")),
    Link(Port("backbone", "eth1"), Port("example", "eth0")),
    Link(Port("example", "eth1"), Port("exampleCOM", "example")),
    *(Link(Port(name, "eth0"), Port("exampleCOM", name)) for name in ("ftp", "mail", "www")),
)

#: The playground's DNS (the book's ``dns/hosts`` and ``mx-entries``, in one loaded place).
DNS_RECORDS: dict[str, str] = {
    **{h.fqdn: h.address for h in HOSTS},
    "example": "10.130.1.1",
    "ftp": "10.130.1.2",
    "mail": "10.130.1.3",
    "www": "10.130.1.4",
}


def host(name: str) -> Host:
    """The host called ``name`` (``KeyError`` when there is none)."""
    for candidate in HOSTS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def _lan_of(name: str) -> str | None:
    for link in LINKS:
        if link.a.node == name and link.b.node in BRIDGES:
            return link.b.node
    return None


def path_between(a: str, b: str) -> list[Port]:
    """The ports that carry traffic between neighbours ``a`` and ``b``.

    For a wire, both of its ends; for two hosts on one LAN, ``a``'s interface and the
    bridge port facing ``a`` (so shaping it changes what ``a`` sends and receives there).
    An empty list when ``a`` and ``b`` are not neighbours.
    """
    for link in LINKS:
        ends = {link.a.node, link.b.node}
        if ends == {a, b}:
            return [link.a, link.b]
    lan = _lan_of(a)
    if lan is not None and lan == _lan_of(b):
        for link in LINKS:
            if link.a.node == a and link.b.node == lan:
                return [link.a, link.b]
    return []
