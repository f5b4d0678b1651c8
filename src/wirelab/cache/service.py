"""The lab's cache service (chapter 8): one or more real memcached daemons on loopback.

``wirelab lab up --memcached 3`` starts three daemons on 11211, 11212 and 11213 (free ports
in ephemeral mode), reported as the endpoints ``memcached``, ``memcached2``, ``memcached3``
of the service ``cache`` (host ``cache.example.com``). Clients address them all through a
consistent-hash ring (:class:`wirelab.cache.cluster.CacheCluster`).

The service supervises its daemons the way an operator's init system would: it polls each
child every half second; one that dies (killed, OOM) is reaped at once, reported in one
warning line, and started again on the same port after a short backoff, empty. A node that
dies more than ``max_restarts`` times within ``restart_window`` seconds is left down, with one
error line. On lab shutdown every daemon is stopped by PID.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING

from wirelab.config import default_port
from wirelab.errors import ConfigError, Timeout
from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started

if TYPE_CHECKING:
    from wirelab.cache.cluster import Node
    from wirelab.cache.daemon import MemcachedDaemon
    from wirelab.lab.state import LabState

__all__ = ["SERVICES", "CacheService", "endpoint_name", "lab_nodes"]

log = logging.getLogger(__name__)


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
    """memcached daemons as child processes, restarted when they die, stopped by PID.

    Args:
        poll_interval: seconds between two checks of each child.
        max_restarts: restarts allowed per node within ``restart_window`` seconds; a node
            that dies once more is left down.
        restart_window: seconds over which restarts are counted.
        backoff: seconds before the first restart; doubled for each recent restart ...
        max_backoff: ... up to this many seconds.
    """

    name = "cache"
    host = "cache.example.com"
    chapter = 8
    description = "memcached daemons (chapter 8); --memcached N starts N nodes"

    def __init__(
        self,
        *,
        poll_interval: float = 0.5,
        max_restarts: int = 3,
        restart_window: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        if poll_interval <= 0 or max_restarts < 0 or restart_window <= 0 or backoff < 0:
            raise ConfigError("cache service: bad supervision settings")
        self.poll_interval = poll_interval
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.backoff = backoff
        self.max_backoff = max_backoff

    def restart_delay(self, recent: int) -> float:
        """Seconds to wait before a restart when the node restarted ``recent`` times lately."""
        return float(min(self.backoff * 2**recent, self.max_backoff))

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
            endpoints = [
                BoundEndpoint(self.name, endpoint_name(i), self.host, d.host, d.port, "tcp", False)
                for i, d in enumerate(daemons)
            ]
            started(endpoints)
            live = list(endpoints)

            async def watch(endpoint: BoundEndpoint, daemon: MemcachedDaemon) -> None:
                await self._watch(daemon, endpoint.name)
                live.remove(endpoint)  # given up: the state file stops listing it
                started(list(live))

            async with asyncio.TaskGroup() as group:  # cancelled with the lab, before the stop
                for endpoint, daemon in zip(endpoints, daemons, strict=True):
                    group.create_task(watch(endpoint, daemon), name=f"wirelab-lab:{endpoint.name}")
            await asyncio.Event().wait()  # every node gave up: the lab still runs
        finally:
            for daemon in daemons:
                daemon.terminate()  # all at once: each takes up to a second to exit
            for daemon in daemons:
                daemon.stop()

    async def _watch(self, daemon: MemcachedDaemon, node: str) -> None:
        """Poll one running daemon; restart it when it dies, until the restart budget is spent."""
        from wirelab.cache.daemon import describe_exit

        restarts: collections.deque[float] = collections.deque()
        where = f"{daemon.host}:{daemon.port}"
        while True:
            await asyncio.sleep(self.poll_interval)
            code = daemon.poll()  # reaps it once it has exited
            if code is None:
                continue
            what = f"died (pid {daemon.pid}, {describe_exit(code)})"
            while True:
                now = time.monotonic()
                while restarts and now - restarts[0] > self.restart_window:
                    restarts.popleft()
                if len(restarts) >= self.max_restarts:
                    log.error(
                        "memcached node %s (%s) %s; giving up after %d restart%s within %g s: "
                        "it stays down until the lab is restarted",
                        node,
                        where,
                        what,
                        len(restarts),
                        "" if len(restarts) == 1 else "s",
                        self.restart_window,
                    )
                    return
                delay = self.restart_delay(len(restarts))
                log.warning(
                    "memcached node %s (%s) %s; restarting it on the same port in %g s, empty",
                    node,
                    where,
                    what,
                    delay,
                )
                await asyncio.sleep(delay)
                restarts.append(time.monotonic())
                try:
                    await daemon.astart(same_port=True)  # from the loop's thread, as at start
                except (ConfigError, Timeout, OSError) as exc:  # port taken, fork failed
                    what = f"did not come back ({exc})"
                    continue
                log.info(
                    "memcached node %s is back on %s (pid %d), empty: the keys it held are "
                    "gone (restart %d of at most %d within %g s)",
                    node,
                    where,
                    daemon.pid,
                    len(restarts),
                    self.max_restarts,
                    self.restart_window,
                )
                break


SERVICES = (CacheService(),)
