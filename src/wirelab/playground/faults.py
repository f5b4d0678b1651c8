"""The link layer's faults and NAT as rules: loss (an nftables ``numgen`` rule on a device's
egress), a rate (tc's tbf), and a modem's masquerade. :mod:`wirelab.playground.netns`
applies them inside the namespaces and re-exports :func:`parse_loss`.
"""

from __future__ import annotations

from wirelab.errors import ConfigError

__all__ = ["QDISC_UNKNOWN", "TBF_LIMITS", "loss_rules", "nat_rules", "parse_loss"]

#: What tc says when the kernel has no module for a queueing discipline (iproute2 6.1).
QDISC_UNKNOWN = "Specified qdisc kind is unknown"
#: tbf's bucket and queue: a 32 kbit burst, packets wait at most 400 ms before being dropped.
TBF_LIMITS = ["burst", "32kbit", "latency", "400ms"]


def parse_loss(text: str) -> int:
    """``"10%"`` or ``"2.5"`` as a share in thousandths (100, 25); a bad value is a ConfigError."""
    try:
        share = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ConfigError(f"bad loss {text[:20]!r}: say a percentage such as 10%") from None
    if not 0 <= share <= 100:
        raise ConfigError(f"loss {text[:20]} is not between 0% and 100%")
    return round(share * 10)


def loss_rules(device: str, permille: int) -> str:
    rule = "drop" if permille >= 1000 else f"numgen random mod 1000 < {permille} drop"
    return (
        f"table netdev wlfault_{device} {{\n"
        "  chain egress {\n"
        f'    type filter hook egress device "{device}" priority filter; policy accept;\n'
        f"    {rule}\n"
        "  }\n"
        "}\n"
    )


def nat_rules(device: str) -> str:
    return (
        "table ip nat {\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    oifname "{device}" masquerade\n'
        "  }\n"
        "}\n"
    )
