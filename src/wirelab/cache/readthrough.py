"""A read-through cache in front of an expensive function, and the book's squares benchmark.

The book's ``squares.py`` (F42) looks up ``sq:<n>`` in memcached; on a miss it "computes"
(sleeps 1 ms) and stores the square. Ten rounds of 2000 random lookups get faster as the cache
warms. This module keeps that lesson and fixes what the book got wrong:

* values are JSON (never pickle), stored with a TTL (300 s by default) so they expire;
* a missing or dead server is **seen**: the cluster raises or reports instead of returning
  ``None``/``0`` forever; writes wait for ``STORED`` and failures are counted;
* when a node dies mid-run the cache keeps serving from the other nodes; when every node is
  down it falls back to computing (``fallback=True``) and counts those lookups as bypassed,
  so the answers stay correct and the report shows what happened.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from wirelab.cache.cluster import INTEGER_FLAG, CacheCluster
from wirelab.errors import ConnectError, WirelabError

__all__ = [
    "CacheStats",
    "ReadThroughCache",
    "SquaresReport",
    "SquaresRound",
    "run_squares",
    "slow_square",
]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

#: Seconds a cached value lives (the book's values never expired).
DEFAULT_TTL = 300


@dataclass
class CacheStats:
    """What a :class:`ReadThroughCache` did."""

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    write_failures: int = 0

    @property
    def lookups(self) -> int:
        """Every call to ``get``."""
        return self.hits + self.misses + self.bypassed

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups (0 when there were none)."""
        return self.hits / self.lookups if self.lookups else 0.0

    def copy(self) -> CacheStats:
        """A snapshot."""
        return CacheStats(self.hits, self.misses, self.bypassed, self.write_failures)


class ReadThroughCache(Generic[K, V]):
    """``get(key)`` returns the cached value, or computes, stores and returns it.

    Args:
        cluster: where values live.
        compute: the expensive function.
        prefix: put before ``str(key)`` to make the cache key (``"sq:"``).
        ttl: seconds a stored value lives.
        fallback: when every node is down, compute (and count a bypass) instead of raising.
        encode: value -> bytes (JSON by default; never pickle).
        decode: bytes -> value.
        flags: memcached client flags stored with each value (``INTEGER_FLAG`` when every
            value is an integer, so the book's python-memcached client reads an ``int``).
    """

    def __init__(
        self,
        cluster: CacheCluster,
        compute: Callable[[K], V],
        *,
        prefix: str = "",
        ttl: int = DEFAULT_TTL,
        fallback: bool = True,
        encode: Callable[[V], bytes] | None = None,
        decode: Callable[[bytes], V] | None = None,
        flags: int = 0,
    ) -> None:
        self.cluster = cluster
        self.compute = compute
        self.prefix = prefix
        self.ttl = ttl
        self.fallback = fallback
        self._encode: Callable[[V], bytes] = encode or _json_encode
        self._decode: Callable[[bytes], V] = decode or _json_decode
        self.stats = CacheStats()
        self.flags = flags

    def get(self, key: K) -> V:
        """The value for ``key``, from the cache when it is there.

        Raises:
            ConnectError: every node is down and ``fallback`` is off.
            ProtocolError: a key or value memcached cannot take.
        """
        name = f"{self.prefix}{key}"
        try:
            raw = self.cluster.get(name)
        except ConnectError:
            if not self.fallback:
                raise
            self.stats.bypassed += 1
            return self.compute(key)
        if raw is not None:
            try:
                value = self._decode(raw)
            except ValueError:
                log.warning("cache value of %r is not what we stored; recomputing", name)
            else:
                self.stats.hits += 1
                return value
        self.stats.misses += 1
        value = self.compute(key)
        try:
            self.cluster.set(name, self._encode(value), ttl=self.ttl, flags=self.flags)
        except ConnectError:
            self.stats.write_failures += 1
            if not self.fallback:
                raise
        except WirelabError as exc:
            self.stats.write_failures += 1
            log.warning("could not cache %r: %s", name, exc)
        return value


def _json_encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _json_decode(raw: bytes) -> Any:
    return json.loads(raw)


def slow_square(n: int, delay: float = 0.001) -> int:
    """The book's expensive function: sleep ``delay`` seconds, then return n squared."""
    if delay > 0:
        time.sleep(delay)
    return n * n


@dataclass(frozen=True)
class SquaresRound:
    """One round of lookups."""

    number: int
    lookups: int
    hits: int
    misses: int
    bypassed: int
    seconds: float

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups in this round."""
        return self.hits / self.lookups if self.lookups else 0.0


@dataclass
class SquaresReport:
    """The whole run: each round, and the totals."""

    delay: float
    max_n: int
    nodes: list[str]
    rounds: list[SquaresRound] = field(default_factory=list)
    wrong: int = 0
    write_failures: int = 0
    node_failures: int = 0

    @property
    def hit_ratio(self) -> float:
        """Hits over every lookup of the run."""
        lookups = sum(r.lookups for r in self.rounds)
        return sum(r.hits for r in self.rounds) / lookups if lookups else 0.0

    @property
    def speedup(self) -> float:
        """First round's time over the last round's: what the warm cache bought."""
        if len(self.rounds) < 2 or self.rounds[-1].seconds <= 0:
            return 1.0
        return self.rounds[0].seconds / self.rounds[-1].seconds

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "nodes": self.nodes,
            "delay": self.delay,
            "max_n": self.max_n,
            "rounds": [
                {
                    "round": r.number,
                    "lookups": r.lookups,
                    "hits": r.hits,
                    "misses": r.misses,
                    "bypassed": r.bypassed,
                    "seconds": round(r.seconds, 4),
                    "hit_ratio": round(r.hit_ratio, 4),
                }
                for r in self.rounds
            ],
            "hit_ratio": round(self.hit_ratio, 4),
            "speedup": round(self.speedup, 2),
            "wrong": self.wrong,
            "write_failures": self.write_failures,
            "node_failures": self.node_failures,
        }


def run_squares(
    cluster: CacheCluster,
    *,
    rounds: int = 10,
    lookups: int = 2000,
    max_n: int = 5000,
    delay: float = 0.001,
    ttl: int = DEFAULT_TTL,
    seed: int | None = None,
    on_lookup: Callable[[int, int], None] | None = None,
    on_round: Callable[[SquaresRound], None] | None = None,
) -> SquaresReport:
    """The book's benchmark: ``rounds`` x ``lookups`` random squares through the cache.

    Every answer is checked against ``n * n``; ``report.wrong`` must stay 0, even when a node
    dies during the run.

    Args:
        cluster: the memcached nodes (use a fresh ``namespace`` for a cold start).
        rounds: how many rounds.
        lookups: lookups per round.
        max_n: numbers are drawn from 0..max_n.
        delay: seconds the expensive function sleeps.
        ttl: seconds a cached square lives.
        seed: for a repeatable sequence of numbers.
        on_lookup: called as ``on_lookup(round, lookup)`` after each lookup (progress bars).
        on_round: called with each finished round.
    """
    rng = random.Random(seed)
    # The book's keys (sq:<n>, under the cluster's namespace) and the book's client's value
    # encoding (decimal digits, which JSON writes for an int, with the integer flag), so the
    # book's squares.py and this share a cache when the namespace is empty.
    cache: ReadThroughCache[int, int] = ReadThroughCache(
        cluster, lambda n: slow_square(n, delay), prefix="sq:", ttl=ttl, flags=INTEGER_FLAG
    )
    failures_before = cluster.failures
    report = SquaresReport(delay, max_n, [str(n) for n in cluster.nodes])
    for number in range(1, rounds + 1):
        before = cache.stats.copy()
        began = time.perf_counter()
        for i in range(lookups):
            n = rng.randint(0, max_n)
            if cache.get(n) != n * n:
                report.wrong += 1
            if on_lookup is not None:
                on_lookup(number, i)
        seconds = time.perf_counter() - began
        now = cache.stats
        done = SquaresRound(
            number,
            lookups,
            now.hits - before.hits,
            now.misses - before.misses,
            now.bypassed - before.bypassed,
            seconds,
        )
        report.rounds.append(done)
        if on_round is not None:
            on_round(done)
    report.write_failures = cache.stats.write_failures
    report.node_failures = cluster.failures - failures_before
    return report
