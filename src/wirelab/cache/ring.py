"""Consistent hashing for a memcached cluster: a ketama-compatible ring (pure, no I/O).

Modulo sharding (``hash(key) % N``, the book's ``hashing.py``) sends most keys to another
server when N changes, so adding one cache node empties most of the cache. A consistent-hash
ring moves only about 1/N of the keys: each server owns many points on a circle of 2**32
positions, and a key belongs to the first server point at or after the key's own position.

This ring follows libketama (last.fm's ketama; uhashring agrees on every key), so a client
in another language finds the same server for a key when it names servers the same way
(libmemcached leaves out the default port 11211 and spymemcached writes ``/ip:port``, so
their rings differ from this one for the same cluster):

* a server named ``"host:port"`` with weight w among N servers of total weight W gets
  ``w * 40 * N // W`` MD5 digests of ``"host:port-k"`` (k = 0, 1, ...), each split into
  four little-endian 32-bit points (160 points per server when weights are equal);
* a key's position is the first four bytes of ``MD5(key)``, little-endian;
* the owner is the server of the first point >= that position, wrapping around.

pymemcache's own ``HashClient`` does not use ketama: it uses rendezvous (highest random
weight) hashing with MurmurHash3, which also moves about 1/N of the keys but places them
differently; :mod:`wirelab.cache.shards` compares both.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping

from wirelab.errors import ConfigError

__all__ = ["POINTS_PER_DIGEST", "KetamaRing", "ketama_digests", "ketama_hash"]

#: Points taken from one 16-byte MD5 digest (four 32-bit words).
POINTS_PER_DIGEST = 4
#: Digests per server when every server has the same weight (libketama's 40).
_DIGESTS_PER_SERVER = 40


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def ketama_hash(key: str | bytes) -> int:
    """The key's position on the ring: the first 4 bytes of MD5(key), little-endian."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return int.from_bytes(_md5(raw)[:4], "little")


def ketama_digests(node: str, count: int) -> list[int]:
    """The ``4 * count`` ring points of ``node`` (libketama's ``"node-k"`` digests)."""
    points: list[int] = []
    for k in range(count):
        digest = _md5(f"{node}-{k}".encode())
        points.extend(
            int.from_bytes(digest[h * 4 : h * 4 + 4], "little") for h in range(POINTS_PER_DIGEST)
        )
    return points


class KetamaRing:
    """A ketama consistent-hash ring of server names (``"10.0.0.1:11211"``).

    Example::

        ring = KetamaRing(["10.0.0.1:11211", "10.0.0.2:11211"])
        ring.node_for("sq:42")     # -> "10.0.0.2:11211"
        ring.add("10.0.0.3:11211") # about a third of the keys move to the new server
    """

    def __init__(self, nodes: Iterable[str] = (), weights: Mapping[str, int] | None = None):
        self._weights: dict[str, int] = {}
        for node in nodes:
            self._weights[node] = (weights or {}).get(node, 1)
        self._points: list[int] = []
        self._owners: list[str] = []
        self._build()

    @property
    def nodes(self) -> list[str]:
        """The servers on the ring, in the order they were added."""
        return list(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __contains__(self, node: object) -> bool:
        return node in self._weights

    def add(self, node: str, weight: int = 1) -> None:
        """Put ``node`` on the ring (or change its weight)."""
        if weight < 1:
            raise ConfigError(f"ring weight of {node} must be at least 1, not {weight}")
        self._weights[node] = weight
        self._build()

    def remove(self, node: str) -> None:
        """Take ``node`` off the ring; only the keys it owned move.

        Raises:
            ConfigError: ``node`` is not on the ring.
        """
        if node not in self._weights:
            raise ConfigError(f"{node} is not on the ring")
        del self._weights[node]
        self._build()

    def node_for(self, key: str | bytes) -> str:
        """The server that owns ``key``.

        Raises:
            ConfigError: the ring has no server.
        """
        if not self._points:
            raise ConfigError("the hash ring has no server")
        index = bisect.bisect_left(self._points, ketama_hash(key))
        return self._owners[index if index < len(self._points) else 0]

    def _build(self) -> None:
        total = sum(self._weights.values())
        count = len(self._weights)
        pairs: list[tuple[int, str]] = []
        for node, weight in self._weights.items():
            digests = weight * _DIGESTS_PER_SERVER * count // total if total else 0
            pairs.extend((point, node) for point in ketama_digests(node, digests))
        pairs.sort()
        self._points = [p for p, _ in pairs]
        self._owners = [n for _, n in pairs]
