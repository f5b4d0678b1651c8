"""What every Zen server architecture shares: the running-server handle and the small seams.

Every architecture binds in the caller's thread (so "address already in use" is raised where
it was asked for), starts serving in threads or child processes, and returns a
:class:`RunningServer` once it answers. :meth:`RunningServer.stop` closes the listener and
every connection and joins every thread and child: nothing is left behind.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Generic, TypeVar

from wirelab.net.addresses import format_address

__all__ = [
    "ACCEPT_BACKOFF",
    "RECV_SIZE",
    "RESOURCE_ERRNOS",
    "Pacer",
    "RunningServer",
    "accept_backoff_log",
    "peer_name",
    "set_os_timeouts",
]

log = logging.getLogger("wirelab.zen.server")

#: Bytes asked of the kernel per ``recv``: a question is ~25 bytes, a pipelined burst of a
#: thousand is 25 KiB; 64 KiB drains any burst in one call.
RECV_SIZE = 64 << 10

#: ``accept`` errors that mean "out of descriptors or memory now", not "the listener broke".
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: Seconds an accept loop pauses after running out of descriptors, instead of spinning.
ACCEPT_BACKOFF = 0.1


def peer_name(sock: socket.socket) -> str:
    """``host:port`` of the peer, or ``?`` if it is already gone."""
    try:
        return format_address(sock.getpeername())
    except OSError:
        return "?"


def set_os_timeouts(sock: socket.socket, seconds: float) -> None:
    """Give a *blocking* socket kernel-side receive and send timeouts.

    ``settimeout`` makes CPython poll before every call; ``SO_RCVTIMEO``/``SO_SNDTIMEO`` let
    the kernel time out a blocking ``recv``/``send`` itself (it then fails with ``EAGAIN``,
    which Python raises as :class:`BlockingIOError`), at no cost per call.
    """
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class _RateLimit:
    """Log a repeated condition at most once per ``period`` seconds."""

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self._last = -period
        self._lock = threading.Lock()

    def ready(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.period:
                return False
            self._last = now
            return True


_accept_errors = _RateLimit()


def accept_backoff_log(exc: OSError) -> None:
    """Log (rate-limited) that accepting failed for lack of resources."""
    if _accept_errors.ready():
        log.warning("cannot accept a connection (%s); pausing accepts", exc.strerror or exc)


C = TypeVar("C", bound=Hashable)


class Pacer(Generic[C]):
    """The simulated work of a one-thread event loop: each answer ``delay`` after the last.

    The book slept in ``get_answer``; an event loop must not, or every client would wait. A
    pacer keeps the answers on a timer heap instead: :meth:`schedule` queues a connection's
    answers ``delay`` apart (after any it still owes), the loop sleeps at most until
    :meth:`next_due`, and :meth:`pop_due` hands back what is due, in order.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._heap: list[tuple[float, int, C, bytes]] = []
        self._seq = itertools.count()
        self._last: dict[C, float] = {}
        self._owed: dict[C, int] = {}

    def schedule(self, conn: C, answers: list[bytes]) -> None:
        """Owe ``conn`` these answers, ``delay`` apart, after those it is owed already."""
        if not answers:
            return
        due = max(time.monotonic(), self._last.get(conn, 0.0))
        for answer in answers:
            due += self.delay
            heapq.heappush(self._heap, (due, next(self._seq), conn, answer))
        self._last[conn] = due
        self._owed[conn] = self._owed.get(conn, 0) + len(answers)

    def owes(self, conn: C) -> bool:
        """True while ``conn`` has answers waiting on the heap."""
        return conn in self._owed

    def next_due(self) -> float | None:
        """When the next answer is due (``time.monotonic()`` scale), or ``None``."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[C, bytes]]:
        """The answers due by ``now``, oldest first (forgotten once returned)."""
        due: list[tuple[C, bytes]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, conn, answer = heapq.heappop(self._heap)
            left = self._owed[conn] - 1
            if left:
                self._owed[conn] = left
            else:
                del self._owed[conn]
                del self._last[conn]
            due.append((conn, answer))
        return due


class RunningServer:
    """A Zen server that is serving; stop it with :meth:`stop` or a ``with`` block.

    Attributes:
        arch: the architecture's name.
        address: ``(host, port)`` it listens on.
        pids: the processes that do the serving (for memory measurements).
    """

    def __init__(
        self,
        arch: str,
        address: tuple[str, int],
        stop: Callable[[], None],
        pids: list[int] | None = None,
    ) -> None:
        self.arch = arch
        self.address = address
        self.pids = pids if pids is not None else []
        self._stop = stop
        self._stopped = False
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Close the listener and every connection; join threads and children. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop()

    async def aclose(self) -> None:
        """:meth:`stop` from an event loop (for ``wirelab.cli.common.run_server``)."""
        import asyncio  # here: an inetd nowait child imports this module, 7 MB each for asyncio

        await asyncio.to_thread(self.stop)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.arch} at {format_address(self.address)}>"
