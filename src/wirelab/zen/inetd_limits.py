"""The bounds of the ``nowait`` super-server (chapter 7): children, start rate, waiting, lifetimes.

A process per connection costs a whole interpreter per client: about 16 MB resident each
(Python 3.11; :mod:`wirelab.zen.inetd` imports asyncio only in the ``wait`` child to keep it
so). Unbounded, 500 slow clients once started 256 children, 5.9 GB and a load average of 30.
So ``nowait``
is bounded the way inetd's ``nowait.N`` and xinetd's ``instances``/``cps`` bound a service
(:class:`NowaitLimits`):

* at most ``max_children`` children at once: :func:`default_max_children`, 32 (32 x 24 MB,
  our per-child budget, stays under 1 GB), fewer on a machine with less memory free;
* at most ``per_minute`` children started in any 60 seconds (a fork storm costs CPU: a
  Python start is ~40 ms of it);
* when every child is taken, a new connection waits on a bounded stack (``max_pending``,
  64) and the newest waiting connection gets the next freed slot (adaptive LIFO, as large
  services serve under overload: the newest client is the one still likely to be there and
  to be a normal one arriving after a burst). While connections wait, the oldest child is
  ended (its connection shut down, the child terminated) to free a slot, so the cap is never
  exceeded. The oldest, because a normal client asks and goes, while a slow client that
  holds a slot can look busy but not young. At most ``evictions_per_second`` children are
  ended this way, so a flood cannot become a fork storm;
* when the stack overflows, its oldest connection is closed; a connection that waited
  ``pending_timeout`` seconds is closed too, one whose client left is dropped without a
  child, and over the start rate a newcomer is closed at once. One warning line per burst
  (not one per connection);
* at most ``max_starting`` children (the CPUs, at least 2) start up at once: a child closes
  an inherited pipe (``--ready-fd``) once it can read its client, and only then does the next
  start, so the newest waiting client's start-up does not share two cores with thirty others;
* each child closes its client after ``child_idle`` seconds without progress, and the
  super-server terminates any child older than ``child_lifetime``, so a client that trickles
  a byte now and then cannot keep a slot forever.

No slot is reserved (on loopback a normal client and a hostile one look alike); a client
that arrives after a burst is on top of the stack and takes the next freed slot: within
``1 / evictions_per_second`` seconds (0.25 s) plus a child's start-up time.

The super-server (:mod:`wirelab.zen.inetd`) keeps the two rates with :class:`StartRate` (the
starts of the last 60 seconds) and :class:`EvictionRate` (a token bucket).
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass

from wirelab.errors import ConfigError

__all__ = [
    "CHILDREN_MEMORY",
    "CHILD_MEMORY",
    "DEFAULT_CHILD_IDLE",
    "DEFAULT_CHILD_LIFETIME",
    "DEFAULT_EVICTIONS_PER_SECOND",
    "DEFAULT_MAX_CHILDREN",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_PENDING_TIMEOUT",
    "DEFAULT_PER_MINUTE",
    "EvictionRate",
    "NowaitLimits",
    "StartRate",
    "default_max_children",
]

#: Resident memory we budget per ``nowait`` child: ~16 MB measured (Python 3.11, x86-64),
#: plus room for a bigger interpreter or a busy client's buffers.
CHILD_MEMORY = 24 << 20

#: Resident memory all ``nowait`` children of one super-server may use together: under 1 GB,
#: with room left for the super-server and the rest of the lab.
CHILDREN_MEMORY = 768 << 20

#: Children a ``nowait`` super-server runs at once, at most (768 MB / 24 MB = 32).
DEFAULT_MAX_CHILDREN = CHILDREN_MEMORY // CHILD_MEMORY

#: Children started in any 60 seconds, at most (openbsd-inetd's ``nowait.N`` default).
DEFAULT_PER_MINUTE = 256

#: Seconds a ``nowait`` child waits for a client that makes no progress.
DEFAULT_CHILD_IDLE = 10.0

#: Seconds a ``nowait`` child may live, however its client behaves.
DEFAULT_CHILD_LIFETIME = 60.0

#: Children ended per second (at most, in a burst of as many) to make room for new clients.
DEFAULT_EVICTIONS_PER_SECOND = 4.0

#: Accepted connections that wait for a slot, at most (the newest is served first).
DEFAULT_MAX_PENDING = 64

#: Seconds an accepted connection waits for a slot before it is closed.
DEFAULT_PENDING_TIMEOUT = 10.0


def _available_memory() -> int | None:
    """Bytes of memory the machine can still give (Linux ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def default_max_children() -> int:
    """:data:`DEFAULT_MAX_CHILDREN`, or fewer: a quarter of the free memory in children."""
    available = _available_memory()
    if available is None:
        return DEFAULT_MAX_CHILDREN
    return max(1, min(DEFAULT_MAX_CHILDREN, available // 4 // CHILD_MEMORY))


@dataclass(frozen=True)
class NowaitLimits:
    """How many ``nowait`` children run, how fast they start, and how long they live.

    Attributes:
        max_children: children at once (inetd's ``nowait.N``, xinetd's ``instances``);
            ``None`` for :func:`default_max_children`.
        per_minute: children started in any 60 seconds (xinetd's ``cps``, per minute).
        child_idle: seconds a child keeps a client that makes no progress.
        child_lifetime: seconds after which the super-server terminates a child.
        evictions_per_second: children ended per second, while connections wait for a slot,
            to make room for them (the oldest child first); 0 ends none.
        max_pending: accepted connections waiting for a slot, at most (the newest is served
            first, the oldest closed on overflow); 0 closes a newcomer at once when every slot
            is taken (and then no child is ended for it).
        pending_timeout: seconds a connection waits for a slot before it is closed.
        max_starting: children starting up at once (not yet ready to read their client);
            ``None`` for the number of CPUs, at least 2.
    """

    max_children: int | None = None
    per_minute: int = DEFAULT_PER_MINUTE
    child_idle: float = DEFAULT_CHILD_IDLE
    child_lifetime: float = DEFAULT_CHILD_LIFETIME
    evictions_per_second: float = DEFAULT_EVICTIONS_PER_SECOND
    max_pending: int = DEFAULT_MAX_PENDING
    pending_timeout: float = DEFAULT_PENDING_TIMEOUT
    max_starting: int | None = None

    def __post_init__(self) -> None:
        if self.max_children is not None and self.max_children < 1:
            raise ConfigError(f"max_children must be at least 1, not {self.max_children}")
        if self.per_minute < 1:
            raise ConfigError(f"per_minute must be at least 1, not {self.per_minute}")
        if not 0 < self.child_idle < float("inf") or not 0 < self.child_lifetime < float("inf"):
            raise ConfigError("child_idle and child_lifetime must be finite and above zero")
        if not 0 <= self.evictions_per_second < float("inf"):
            raise ConfigError("evictions_per_second must be finite and not below zero")
        if self.max_pending < 0:
            raise ConfigError(f"max_pending must not be below zero, not {self.max_pending}")
        if not 0 < self.pending_timeout < float("inf"):
            raise ConfigError("pending_timeout must be finite and above zero")
        if self.max_starting is not None and self.max_starting < 1:
            raise ConfigError(f"max_starting must be at least 1, not {self.max_starting}")


class StartRate:
    """The children started in the last 60 seconds, held against ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._recent: collections.deque[float] = collections.deque()

    def note(self, now: float) -> None:
        """A child was started at ``now`` (``time.monotonic()``)."""
        self._recent.append(now)

    def too_fast(self, now: float, extra: int = 0) -> str | None:
        """Why no child may start now for the rate limit (``extra`` about to), or ``None``."""
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) + extra >= self.per_minute:
            return f"{len(self._recent)} children started in the last minute, the rate limit"
        return None


class EvictionRate:
    """At most ``per_second`` children ended per second, in a burst of as many (a token bucket)."""

    def __init__(self, per_second: float, now: float) -> None:
        self.per_second = per_second
        self._tokens = max(1.0, per_second)
        self._tokens_at = now

    def allows(self, now: float) -> bool:
        """True when the eviction rate allows ending a child now."""
        rate = self.per_second
        self._tokens = min(max(1.0, rate), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        return rate > 0 and self._tokens >= 1

    def take(self) -> None:
        """A child is being ended: spend a token."""
        self._tokens -= 1
