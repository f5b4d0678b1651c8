"""DNS data (RFC 1034, RFC 1035): the lab's ``example.com`` zone as plain records.

The book's playground ran dnsmasq with records spread over three files, some of which were
never loaded. Here every record lives in one place, built when the lab starts from the host
names the lab's services play, all pointing at the lab's own loopback addresses.
One MX set, decided and documented (docs/chapters/04-dns.md):

* ``example.com``       MX 10 ``mail.example.com`` (the book's duplicate MX 50 is dropped);
* ``www.example.com``   MX 10 ``smtp.example.com`` (an MX target that is an alias, kept on
  purpose to exercise the "MX target is a CNAME" path, although RFC 2181 section 10.3 says
  real zones must not do it);
* ``smtp.example.com``  CNAME ``mail.example.com``;
* ``nomail.example.com`` a null MX (RFC 7505): "this domain accepts no mail";
* ``many.example.com``  enough TXT records that a UDP answer is truncated (TC) and
  resolvers retry over TCP.

This module has no socket and no dnslib: it only describes the records.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wirelab.errors import ConfigError

__all__ = [
    "BOOK_HOSTS",
    "DEFAULT_TTL",
    "ORIGIN",
    "Record",
    "Zone",
    "lab_zone",
    "normalize_name",
]

#: The zone the lab serves.
ORIGIN = "example.com"

#: Seconds a resolver may cache a lab answer: short, so a restarted lab is seen quickly.
DEFAULT_TTL = 60

#: The playground's hosts in example.com (the book's playground), besides the services' hosts.
BOOK_HOSTS = ("example.com", "ftp.example.com", "mail.example.com", "www.example.com")

#: The lab's name server: the playground's ``backbone`` router ran its DNS.
NAME_SERVER = "backbone.example.com"

#: Record types the zone may hold.
TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA"})

_MAX_NAME = 253  # presentation form without the final dot (RFC 1035 section 2.3.4: 255 wire)
_MAX_LABEL = 63


def normalize_name(name: str) -> str:
    """Lower-case ``name`` and drop the final dot; DNS names compare case-insensitively.

    Raises:
        ConfigError: the name is empty, too long, or has an empty or over-long label.
    """
    text = name.strip().rstrip(".").lower()
    if not text or len(text) > _MAX_NAME:
        raise ConfigError(f"invalid DNS name {name!r}")
    if any(not label or len(label) > _MAX_LABEL for label in text.split(".")):
        raise ConfigError(f"invalid DNS name {name!r}")
    return text


@dataclass(frozen=True)
class Record:
    """One resource record in presentation form.

    ``value`` is an address for A/AAAA, a host name for CNAME/NS, ``(preference, exchange)``
    for MX, the text for TXT, and ``(mname, rname, serial, refresh, retry, expire, minimum)``
    for SOA.
    """

    name: str
    type: str
    value: str | tuple[int, str] | tuple[str, str, int, int, int, int, int]
    ttl: int = DEFAULT_TTL

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ConfigError(f"unsupported record type {self.type!r}")
        object.__setattr__(self, "name", normalize_name(self.name))
        try:
            if self.type == "A":
                ipaddress.IPv4Address(str(self.value))
            elif self.type == "AAAA":
                ipaddress.IPv6Address(str(self.value))
        except ValueError as exc:
            raise ConfigError(f"{self.name} {self.type}: {exc}") from exc


@dataclass
class Zone:
    """The records of one zone, indexed by owner name."""

    origin: str
    records: dict[str, list[Record]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.origin = normalize_name(self.origin)

    def add(self, record: Record) -> None:
        """Add ``record``; CNAME may not share its owner name with other data (RFC 1034 3.6.2).

        Raises:
            ConfigError: the name lies outside the zone, or a CNAME would collide.
        """
        if not self.contains(record.name):
            raise ConfigError(f"{record.name} is outside the zone {self.origin}")
        existing = self.records.setdefault(record.name, [])
        if existing and (record.type == "CNAME") != (existing[0].type == "CNAME"):
            raise ConfigError(f"{record.name}: a CNAME cannot coexist with other records")
        if record not in existing:
            existing.append(record)

    def contains(self, name: str) -> bool:
        """True when ``name`` is the origin or below it."""
        name = name.rstrip(".").lower()
        return name == self.origin or name.endswith("." + self.origin)

    def exists(self, name: str) -> bool:
        """True when ``name`` owns records or has names below it (an empty non-terminal)."""
        name = name.rstrip(".").lower()
        if name in self.records:
            return True
        suffix = "." + name
        return any(owner.endswith(suffix) for owner in self.records)

    def lookup(self, name: str, rtype: str) -> list[Record]:
        """Records of ``rtype`` owned by ``name`` (``ANY`` gives them all)."""
        owned = self.records.get(name.rstrip(".").lower(), [])
        return list(owned) if rtype == "ANY" else [r for r in owned if r.type == rtype]

    @property
    def soa(self) -> Record:
        """The zone's SOA record (for the authority section of negative answers)."""
        return self.lookup(self.origin, "SOA")[0]

    def names(self) -> list[str]:
        """Every owner name, sorted."""
        return sorted(self.records)


def lab_zone(
    hosts: Iterable[str],
    *,
    ipv4: Sequence[str] = ("127.0.0.1",),
    ipv6: Sequence[str] = ("::1",),
    serial: int = 2014_03_25,
    many_txt: int = 40,
) -> Zone:
    """Build the lab's ``example.com`` zone.

    Args:
        hosts: host names the lab's services play; those inside ``example.com`` get A and AAAA
            records (the book's own hosts are always there).
        ipv4: the lab's IPv4 addresses (its bind address).
        ipv6: the lab's IPv6 addresses.
        serial: the SOA serial (the book's fixed clock: 25 March 2014).
        many_txt: how many TXT records ``many.example.com`` holds (enough to overflow UDP).
    """
    zone = Zone(ORIGIN)
    zone.add(
        Record(
            ORIGIN,
            "SOA",
            (NAME_SERVER, "hostmaster.example.com", serial, 3600, 600, 86400, DEFAULT_TTL),
        )
    )
    zone.add(Record(ORIGIN, "NS", NAME_SERVER))
    zone.add(Record(ORIGIN, "MX", (10, "mail.example.com")))
    zone.add(Record(ORIGIN, "TXT", "wirelab lab zone: the playground of Foundations of Python"))
    zone.add(Record("www.example.com", "MX", (10, "smtp.example.com")))
    zone.add(Record("smtp.example.com", "CNAME", "mail.example.com"))
    zone.add(Record("nomail.example.com", "MX", (0, ".")))
    wanted = [*BOOK_HOSTS, NAME_SERVER, "nomail.example.com"]
    wanted += [h for h in hosts if zone.contains(h)]
    for host in dict.fromkeys(normalize_name(h) for h in wanted):
        if host in zone.records and zone.records[host][0].type == "CNAME":
            continue
        for address in ipv4:
            zone.add(Record(host, "A", address))
        for address in ipv6:
            zone.add(Record(host, "AAAA", address))
    for number in range(many_txt):
        zone.add(Record("many.example.com", "TXT", f"record {number:02d}: " + "x" * 24))
    return zone
