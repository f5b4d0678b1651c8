"""Probes run inside a playground host: ``python -m wirelab.playground.probe traceroute DEST``.

``traceroute`` sends UDP datagrams with a growing TTL, as traceroute(8) does, and reads the
ICMP "time exceeded" each router sends back (and the destination's "port unreachable") on a
raw ICMP socket, so it needs root in the namespace, which the playground has.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Sequence

from wirelab.playground.topology import HOSTS

__all__ = ["Hop", "main", "trace"]

#: traceroute(8)'s first destination port; each probe uses BASE_PORT + TTL.
BASE_PORT = 33434
_TIME_EXCEEDED = 11
_UNREACHABLE = 3


Hop = tuple[int, str | None]


def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for h in HOSTS:
        for addresses in h.addresses.values():
            for address in addresses:
                names.setdefault(address.split("/")[0], h.name)
    names["192.168.1.1"] = "modem"
    return names


def _parse(packet: bytes) -> tuple[int, int] | None:
    """(ICMP type, original UDP destination port) of an ICMP error, else ``None``."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:]
    if len(icmp) < 8 + 20 + 8:
        return None
    kind = icmp[0]
    inner = icmp[8:]
    inner_ihl = (inner[0] & 0x0F) * 4
    if inner[9] != socket.IPPROTO_UDP or len(inner) < inner_ihl + 4:
        return None
    (dport,) = struct.unpack("!H", inner[inner_ihl + 2 : inner_ihl + 4])
    return kind, dport


def trace(dest: str, *, max_hops: int = 12, wait: float = 1.0) -> list[Hop]:
    """The routers between here and ``dest``: ``[(ttl, address or None), ...]``."""
    address = socket.gethostbyname(dest)
    hops: list[Hop] = []
    with (
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as icmp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        for ttl in range(1, max_hops + 1):
            udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            udp.sendto(b"wirelab", (address, BASE_PORT + ttl))
            deadline = time.monotonic() + wait
            hop: str | None = None
            done = False
            while (left := deadline - time.monotonic()) > 0:
                icmp.settimeout(left)
                try:
                    packet, (source, _) = icmp.recvfrom(1500)
                except TimeoutError:
                    break
                parsed = _parse(packet)
                if parsed is None or parsed[1] != BASE_PORT + ttl:
                    continue
                hop = source
                done = parsed[0] == _UNREACHABLE
                break
            hops.append((ttl, hop))
            if done:
                break
    return hops


def main(argv: Sequence[str] | None = None) -> int:
    """``traceroute DEST [MAX_HOPS]``: print one line per hop, ``TTL ADDRESS NAME``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3) or args[0] != "traceroute":
        print(
            "usage: python -m wirelab.playground.probe traceroute DEST [MAX_HOPS]", file=sys.stderr
        )
        return 2
    names = _names()
    try:
        hops = trace(args[1], max_hops=int(args[2]) if len(args) == 3 else 12)
    except OSError as exc:
        print(f"traceroute: {exc}", file=sys.stderr)
        return 1
    for ttl, address in hops:
        print(f"{ttl:2d}  {address or '*':<15} {names.get(address or '', '')}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
