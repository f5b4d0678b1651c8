"""A memcached cluster client: pymemcache connections, a ketama ring, and failure reporting.

Application layer over TCP: the memcached text protocol (memcached's ``doc/protocol.txt``),
spoken by pymemcache's ``Client``, one per node. On top, this module adds what the book's
``squares.py`` lacked:

* **timeouts** on connect and on every read and write (the book waited forever);
* **writes that report failure**: every ``set`` waits for ``STORED`` (pymemcache's default
  ``noreply=True`` reports success whether or not the server stored anything, and the book's
  client returned 0 that nobody checked, so with no server the script "worked" and never
  cached);
* **a ketama consistent-hash ring** (:class:`~wirelab.cache.ring.KetamaRing`) over a list of
  servers, so the same code addresses one lab daemon or a cluster on many hosts;
* **node failure handling**: a node that refuses, resets or times out is reported (a log
  line, a :class:`NodeDown` to ``on_node_down``, a counter), taken off the ring so its keys go
  to the remaining nodes, and retried after ``retry_dead`` seconds. When every node is down,
  calls raise :class:`~wirelab.errors.ConnectError`.

A :class:`CacheCluster` is not thread-safe (neither is a pymemcache ``Client``): give each
thread its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from wirelab.cache.keys import check_value, memcached_key
from wirelab.cache.ring import KetamaRing
from wirelab.config import LOOPBACK, default_port
from wirelab.errors import (
    ConfigError,
    ConnectError,
    LocalProtocolError,
    RemoteProtocolError,
)
from wirelab.net.addresses import format_address, parse_port

__all__ = [
    "DEFAULT_RETRY_DEAD",
    "DEFAULT_TIMEOUT",
    "INTEGER_FLAG",
    "CacheCluster",
    "Node",
    "NodeDown",
    "parse_servers",
]

log = logging.getLogger(__name__)

#: Seconds for a connect, and for each read or write, on a memcached connection. memcached
#: answers in well under a millisecond on a LAN; a node that takes a second is treated as down.
DEFAULT_TIMEOUT = 1.0
#: Seconds a failed node stays off the ring before the client tries it again.
DEFAULT_RETRY_DEAD = 30.0
#: The client flag python-memcached (the book's ``memcache`` module) and pymemcache's
#: python_memcache serializer put on a value stored as a decimal integer: a client of the book
#: reads such a value back as an ``int``; with flags 0 it would get bytes.
INTEGER_FLAG = 1 << 1

_T = TypeVar("_T")


@dataclass(frozen=True, order=True)
class Node:
    """One memcached server."""

    host: str
    port: int

    def __str__(self) -> str:
        return format_address((self.host, self.port))


@dataclass(frozen=True)
class NodeDown:
    """A node left the ring: which, why, and where its keys go now."""

    node: Node
    reason: str
    remaining: tuple[Node, ...]

    def __str__(self) -> str:
        if not self.remaining:
            return f"memcached node {self.node} is down ({self.reason}); no node is left"
        return (
            f"memcached node {self.node} is down ({self.reason}); "
            f"its keys now go to the other {len(self.remaining)}"
        )


def parse_servers(spec: str | Iterable[str | tuple[str, int] | Node]) -> list[Node]:
    """Read a server list: ``"10.0.0.1:11211,10.0.0.2"``, ``["[::1]:11211"]``, or tuples.

    A server without a port gets memcached's 11211.

    Raises:
        ConfigError: an empty list, a bad port, or the same server twice.
    """
    items: Iterable[str | tuple[str, int] | Node]
    items = [s for s in spec.split(",") if s.strip()] if isinstance(spec, str) else spec
    nodes: list[Node] = []
    for item in items:
        if isinstance(item, Node):
            node = item
        elif isinstance(item, tuple):
            node = Node(item[0], parse_port(item[1]))
        else:
            node = _parse_one(item.strip())
        if node in nodes:
            raise ConfigError(f"memcached server {node} is listed twice")
        nodes.append(node)
    if not nodes:
        raise ConfigError("no memcached server given")
    return nodes


#: The longest host name DNS can carry (RFC 1035 section 2.3.4).
MAX_HOST_CHARS = 253


def _parse_one(text: str) -> Node:
    fallback = default_port("cache", "memcached")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        node = Node(host, parse_port(rest[1:]) if rest.startswith(":") else fallback)
    elif text.count(":") == 1:
        host, port = text.split(":")
        node = Node(host or LOOPBACK, parse_port(port))
    else:
        node = Node(text, fallback)  # a bare host name, or a bare IPv6 address
    if (
        not node.host
        or len(node.host) > MAX_HOST_CHARS
        or any(ord(c) <= 0x20 or c == "\x7f" for c in node.host)
    ):
        shown = node.host if len(node.host) <= 60 else node.host[:40] + "..."
        raise ConfigError(f"{shown!r} is not a host name or address")
    return node


class CacheCluster:
    """memcached nodes addressed by consistent hashing, with failures reported, not hidden.

    Args:
        servers: the nodes (see :func:`parse_servers`).
        namespace: prefix of every key (``"sq:"``), so applications sharing servers stay apart.
        timeout: seconds for connect and for each read or write.
        retry_dead: seconds a failed node stays off the ring.
        strict_keys: refuse keys memcached cannot take instead of hashing them
            (see :mod:`wirelab.cache.keys`).
        on_node_down: called with a :class:`NodeDown` each time a node leaves the ring.
    """

    def __init__(
        self,
        servers: str | Iterable[str | tuple[str, int] | Node],
        *,
        namespace: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        retry_dead: float = DEFAULT_RETRY_DEAD,
        strict_keys: bool = False,
        on_node_down: Callable[[NodeDown], None] | None = None,
    ) -> None:
        self.nodes: tuple[Node, ...] = tuple(parse_servers(servers))
        self.namespace = namespace
        self.strict_keys = strict_keys
        self.retry_dead = retry_dead
        self.on_node_down = on_node_down
        self.failures = 0
        memcached_key("x", namespace=namespace)  # validate the namespace now
        self._clients = {
            node: Client(
                (node.host, node.port),
                connect_timeout=timeout,
                timeout=timeout,
                no_delay=True,
                default_noreply=False,
            )
            for node in self.nodes
        }
        self._by_name = {str(node): node for node in self.nodes}
        self._ring = KetamaRing(self._by_name)
        self._dead: dict[Node, float] = {}

    # -- membership ---------------------------------------------------------------------------

    @property
    def live_nodes(self) -> tuple[Node, ...]:
        """Nodes on the ring now."""
        return tuple(n for n in self.nodes if n not in self._dead)

    @property
    def dead_nodes(self) -> tuple[Node, ...]:
        """Nodes taken off the ring after a failure, waiting for their retry."""
        return tuple(self._dead)

    def node_for(self, key: str | bytes) -> Node:
        """The live node that holds ``key``.

        Raises:
            ConnectError: every node is down.
        """
        return self._node_for_wire(self.wire_key(key))

    def wire_key(self, key: str | bytes) -> bytes:
        """The key as sent to memcached (namespaced; hashed if it needs to be)."""
        return memcached_key(key, namespace=self.namespace, strict=self.strict_keys)

    def _node_for_wire(self, wire: bytes, *, revive: bool = True) -> Node:
        if revive:
            self._revive()
        if not len(self._ring):
            raise ConnectError(
                "no memcached node is reachable: "
                + ", ".join(str(n) for n in self.nodes)
                + " all failed"
            )
        return self._by_name[self._ring.node_for(wire)]

    def _revive(self) -> None:
        now = time.monotonic()
        for node, since in list(self._dead.items()):
            if now - since >= self.retry_dead:
                log.info("trying memcached node %s again", node)
                del self._dead[node]
                self._ring.add(str(node))

    def _mark_dead(self, node: Node, exc: BaseException, *, report: bool = True) -> None:
        self._clients[node].close()
        self._dead[node] = time.monotonic()
        if str(node) in self._ring:
            self._ring.remove(str(node))
        self.failures += 1
        event = NodeDown(node, _reason(exc), self.live_nodes)
        if not report:  # the caller learns it from the return value or an exception
            log.info("%s", event)
        elif self.on_node_down is None:
            log.warning("%s", event)
        else:  # the caller reports it; the log keeps a quieter trace
            log.info("%s", event)
            self.on_node_down(event)

    # -- commands -----------------------------------------------------------------------------

    def _run(self, wire: bytes, call: Callable[[Client], _T]) -> _T:
        """Run ``call`` on the node of ``wire``; on a node failure, move on to the next."""
        self._revive()
        while True:  # each failure takes a node off the ring: at most len(nodes) turns
            node = self._node_for_wire(wire, revive=False)
            try:
                return call(self._clients[node])
            except (OSError, MemcacheUnexpectedCloseError, UnicodeError) as exc:
                self._mark_dead(node, exc)
            except MemcacheClientError as exc:
                raise LocalProtocolError(
                    f"memcached {node} refused the command: {_text(exc)}"
                ) from exc
            except MemcacheServerError as exc:
                raise RemoteProtocolError(
                    f"memcached {node} answered SERVER_ERROR {_text(exc)}"
                ) from exc
            except (MemcacheError, ValueError) as exc:  # a reply that is not memcached's
                self._clients[node].close()  # where the next reply starts is unknown
                raise RemoteProtocolError(
                    f"memcached {node} sent a reply we cannot read: {_text(exc)}"
                ) from exc

    def get(self, key: str | bytes) -> bytes | None:
        """The cached bytes of ``key``, or ``None`` on a miss.

        Raises:
            ConnectError: every node is down.
            LocalProtocolError: (``strict_keys``) a key memcached cannot take.
        """
        wire = self.wire_key(key)
        value: Any = self._run(wire, lambda c: c.get(wire))
        return None if value is None else bytes(value)

    def set(self, key: str | bytes, value: bytes, *, ttl: int = 0, flags: int = 0) -> None:
        """Store ``value`` under ``key`` and wait until the server says ``STORED``.

        Args:
            key: the key.
            value: the bytes (at most 1 MiB).
            ttl: seconds until memcached forgets it (0: only when it needs the memory).
            flags: the item's 32-bit client flags, which memcached keeps and returns
                (``INTEGER_FLAG`` for a decimal integer, as python-memcached marks one).

        Raises:
            LocalProtocolError: the value is over 1 MiB, or (``strict_keys``) a bad key.
            RemoteProtocolError: the server refused to store it (``NOT_STORED``, or a
                ``SERVER_ERROR`` such as "object too large for cache" or "out of memory").
            ConnectError: every node is down.
        """
        if ttl < 0:
            raise LocalProtocolError(f"cache TTL must be 0 or more seconds, not {ttl}")
        if not 0 <= flags < 1 << 32:
            raise LocalProtocolError(f"memcached flags are 32 bits, not {flags}")
        wire = self.wire_key(key)
        data = check_value(bytes(value))
        stored = self._run(
            wire, lambda c: c.set(wire, data, expire=ttl, noreply=False, flags=flags)
        )
        if not stored:
            raise RemoteProtocolError(f"memcached did not store {key!r} (NOT_STORED)")

    def delete(self, key: str | bytes) -> bool:
        """Forget ``key``; True if it was there."""
        wire = self.wire_key(key)
        return bool(self._run(wire, lambda c: c.delete(wire, noreply=False)))

    def ping(self) -> dict[Node, str]:
        """Ask every live node for its version; nodes that fail are marked down.

        Returns:
            ``{node: "1.6.18"}`` for every node that answered.

        Raises:
            ConnectError: no node answered.
        """
        versions: dict[Node, str] = {}
        errors: list[str] = []
        self._revive()
        for node in self.live_nodes:
            try:
                versions[node] = self._clients[node].version().decode("ascii", "replace")
            except (OSError, MemcacheUnexpectedCloseError, UnicodeError) as exc:
                errors.append(f"{node}: {_reason(exc)}")
                self._mark_dead(node, exc, report=False)
        if not versions:
            raise ConnectError(f"cannot reach memcached ({'; '.join(errors)})")
        return versions

    def close(self) -> None:
        """Close every connection (the object can be used again: it reconnects)."""
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> CacheCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        live = ", ".join(str(n) for n in self.live_nodes)
        return f"<CacheCluster live=[{live}] dead={len(self._dead)}>"


def _text(exc: BaseException) -> str:
    """An exception's message; pymemcache passes the server's bytes as the argument."""
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeError):  # the IDNA codec: a label over 63 characters ...
        return "not a valid host name"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, MemcacheUnexpectedCloseError):
        return "it closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
