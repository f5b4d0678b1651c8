"""Sharding keys over N servers: how evenly each scheme spreads them, and how many move.

The book's ``hashing.py`` (F43) compared three ways of picking a server for a key: ranges of
first letters, Python's ``hash()`` modulo N, and the last byte of MD5 modulo N. It showed the
first is lopsided. It did not show the number that matters in production: when a server is
added or lost, **which share of the keys now maps to a different server** (each one a cache
miss). Every modulo scheme moves most keys; a consistent-hash ring moves about 1/N.

Schemes compared here:

=============== ==================================================================
``alphabetic``  first letter in N contiguous ranges (a-f, g-m, n-s, t-z for N=4)
``python-hash`` ``hash(key) % N``: randomised per process for ``str`` (PYTHONHASHSEED),
                so two clients disagree: never use it across processes
``md5-mod``     last byte of MD5(key) modulo N (the book's choice)
``ketama``      ketama consistent hashing (:mod:`wirelab.cache.ring`, libketama's)
``rendezvous``  rendezvous (highest random weight) hashing with MurmurHash3, what
                pymemcache's ``HashClient`` uses
=============== ==================================================================
"""

from __future__ import annotations

import hashlib
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirelab.cache.ring import KetamaRing
from wirelab.errors import ConfigError

__all__ = ["SCHEMES", "SchemeResult", "ShardReport", "compare_schemes", "plot_report"]

#: A scheme: given the server names, return a function key -> server name.
Placer = Callable[[Sequence[str]], Callable[[str], str]]


def _alphabetic(servers: Sequence[str]) -> Callable[[str], str]:
    n = len(servers)
    bounds = [26 * k // n for k in range(1, n)]  # N=4: g, n, t start a new range

    def place(word: str) -> str:
        first = word[:1].lower()
        index = string.ascii_lowercase.find(first) if first else -1
        return servers[sum(1 for b in bounds if index >= b)] if index >= 0 else servers[0]

    return place


def _python_hash(servers: Sequence[str]) -> Callable[[str], str]:
    return lambda word: servers[hash(word) % len(servers)]


def _md5_mod(servers: Sequence[str]) -> Callable[[str], str]:
    def place(word: str) -> str:
        digest = hashlib.md5(word.encode("utf-8"), usedforsecurity=False).digest()
        return servers[digest[-1] % len(servers)]

    return place


def _ketama(servers: Sequence[str]) -> Callable[[str], str]:
    return KetamaRing(servers).node_for


def _rendezvous(servers: Sequence[str]) -> Callable[[str], str]:
    from pymemcache.client.rendezvous import RendezvousHash

    ring = RendezvousHash(list(servers))
    return lambda word: str(ring.get_node(word))


#: Every scheme, in the order the table shows them.
SCHEMES: dict[str, Placer] = {
    "alphabetic": _alphabetic,
    "python-hash": _python_hash,
    "md5-mod": _md5_mod,
    "ketama": _ketama,
    "rendezvous": _rendezvous,
}
#: Schemes that give the same answer in every process and on every machine.
_STABLE = {"alphabetic": True, "python-hash": False, "md5-mod": True}


@dataclass(frozen=True)
class SchemeResult:
    """One scheme's numbers."""

    name: str
    counts: dict[str, int]
    moved_on_add: float
    moved_on_remove: float
    stable: bool

    @property
    def imbalance(self) -> float:
        """Busiest server's keys over the fair share (1.0 is perfectly even)."""
        total = sum(self.counts.values())
        return max(self.counts.values()) / (total / len(self.counts)) if total else 0.0


@dataclass(frozen=True)
class ShardReport:
    """Every scheme, for one key list and N servers."""

    servers: list[str]
    keys: int
    schemes: list[SchemeResult]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "servers": self.servers,
            "keys": self.keys,
            "schemes": [
                {
                    "name": s.name,
                    "counts": s.counts,
                    "shares": {k: round(v / self.keys, 4) for k, v in s.counts.items()},
                    "imbalance": round(s.imbalance, 3),
                    "moved_on_add": round(s.moved_on_add, 4),
                    "moved_on_remove": round(s.moved_on_remove, 4),
                    "stable_across_processes": s.stable,
                }
                for s in self.schemes
            ],
        }


def _moved(placer: Placer, keys: Sequence[str], before: list[str], after: Sequence[str]) -> float:
    place = placer(after)
    return sum(1 for key, old in zip(keys, before, strict=True) if place(key) != old) / len(keys)


def compare_schemes(
    keys: Sequence[str], servers: int = 4, schemes: Sequence[str] | None = None
) -> ShardReport:
    """Spread ``keys`` over ``servers`` servers with each scheme; measure movement.

    For each scheme: how many keys each server gets, and the share of keys whose server
    changes when a server is added (N -> N+1) and when the last one is lost (N -> N-1).

    Raises:
        ConfigError: fewer than 2 servers, no keys, or an unknown scheme.
    """
    if servers < 2:
        raise ConfigError("sharding needs at least 2 servers")
    if not keys:
        raise ConfigError("no keys to shard")
    names = list(schemes or SCHEMES)
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        raise ConfigError(f"unknown scheme {', '.join(unknown)} (known: {', '.join(SCHEMES)})")
    nodes = [f"server{i}" for i in range(servers)]
    results = []
    for name in names:
        placer = SCHEMES[name]
        place = placer(nodes)
        before = [place(k) for k in keys]
        counts = Counter(before)
        results.append(
            SchemeResult(
                name,
                {node: counts.get(node, 0) for node in nodes},
                _moved(placer, keys, before, [*nodes, f"server{servers}"]),
                _moved(placer, keys, before, nodes[:-1]),
                _STABLE.get(name, True),
            )
        )
    return ShardReport(nodes, len(keys), results)


def plot_report(report: ShardReport, path: Path) -> Path:
    """Draw each scheme's distribution and its key movement into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(report.servers)
    for i, server in enumerate(report.servers):
        shares = [s.counts[server] / report.keys for s in report.schemes]
        offsets = [x + (i - (len(report.servers) - 1) / 2) * width for x in range(len(shares))]
        left.bar(offsets, shares, width, label=server)
    fair = 1 / len(report.servers)
    left.axhline(fair, color="black", linewidth=0.8, linestyle="--", label="fair share")
    left.set_xticks(range(len(report.schemes)), [s.name for s in report.schemes])
    left.set_ylabel("share of keys")
    left.set_title(f"{report.keys:,} keys over {len(report.servers)} servers")
    left.legend(fontsize="small")
    x = range(len(report.schemes))
    right.bar([i - 0.2 for i in x], [s.moved_on_add for s in report.schemes], 0.4, label="add")
    right.bar(
        [i + 0.2 for i in x], [s.moved_on_remove for s in report.schemes], 0.4, label="remove"
    )
    right.set_xticks(list(x), [s.name for s in report.schemes])
    right.set_ylim(0, 1)
    right.set_ylabel("share of keys that move")
    right.set_title("keys moved when one server is added or removed")
    right.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
