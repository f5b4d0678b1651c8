"""The lab's cache service (chapter 8): one or more real memcached daemons on loopback.

``wirelab lab up --memcached 3`` starts three daemons on 11211, 11212 and 11213 (free ports
in ephemeral mode), reported as the endpoints ``memcached``, ``memcached2``, ``memcached3``
of the service ``cache`` (host ``cache.example.com``). Clients address them all through a
consistent-hash ring (:class:`wirelab.cache.cluster.CacheCluster`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from wirelab.config import default_port
from wirelab.errors import ConfigError
from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started

if TYPE_CHECKING:
    from wirelab.cache.cluster import Node
    from wirelab.lab.state import LabState

__all__ = ["SERVICES", "CacheService", "endpoint_name", "lab_nodes"]


def endpoint_name(index: int) -> str:
    """``memcached`` for the first daemon, then ``memcached2``, ``memcached3`` ..."""
    return "memcached" if index == 0 else f"memcached{index + 1}"


def lab_nodes(state: LabState) -> list[Node]:
    """The memcached nodes of a running lab, in order.

    Raises:
        ConfigError: the lab has no cache service (or it is unavailable here, and why).
    """
    from wirelab.cache.cluster import Node

    view = state.service("cache")
    found = [ep for ep in view.endpoints.values() if ep.endpoint.startswith("memcached")]
    if not found:
        raise ConfigError("the lab's cache service has no memcached endpoint")
    found.sort(key=lambda ep: int(ep.endpoint.removeprefix("memcached") or "1"))
    return [Node(ep.address, ep.port) for ep in found]


class CacheService(Service):
    """memcached daemons as child processes, stopped by PID with the lab."""

    name = "cache"
    host = "cache.example.com"
    chapter = 8
    description = "memcached daemons (chapter 8); --memcached N starts N nodes"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.cache.daemon import MemcachedDaemon, memcached_binary

        count = int(lab.options.get("memcached", 1))
        if not 1 <= count <= 16:
            raise ConfigError(f"--memcached must be between 1 and 16, not {count}")
        memcached_binary()  # ServiceUnavailable with the install hint, before binding
        base = default_port("cache", "memcached")
        daemons: list[MemcachedDaemon] = []
        try:
            for index in range(count):
                daemon = MemcachedDaemon(
                    lab.bind_host,
                    0 if lab.ephemeral else base + index,
                    logfile=lab.state_dir / "logs" / f"memcached{index + 1}.log",
                )
                daemons.append(daemon)
                await daemon.astart()  # spawned from the loop's thread: it outlives them
            started(
                [
                    BoundEndpoint(
                        self.name, endpoint_name(i), self.host, d.host, d.port, "tcp", False
                    )
                    for i, d in enumerate(daemons)
                ]
            )
            await asyncio.Event().wait()
        finally:
            for daemon in daemons:
                daemon.terminate()  # all at once: each takes up to a second to exit
            for daemon in daemons:
                daemon.stop()


SERVICES = (CacheService(),)
