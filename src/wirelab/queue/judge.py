"""The judge stage of the pi pipeline (chapter 8): SUB points, ask pythagoras, PUSH tallies.

The judge subscribes to the points that are not obviously inside the quarter circle (topics
``01``, ``10``, ``11``), asks a pythagoras service (REQ/REP, JSON) for x² + y², and pushes
its verdict to the tally. On the book's wire (the default) that is the book's judge exactly:
one point per message (24 characters of ``0``/``1``), one request ``[x, y]`` per point
answered by one JSON number, one ``Y`` or ``N`` per point, so it can join the book's own
``queuepi.py`` (its bitsource on 6700, pythagoras on 6701, tally on 6702). On the batched
wire it judges a batch per message and pushes ``[inside, outside]``. It runs as a thread of
``wirelab queue pi``, or as a process of its own, on another host if need be::

    wirelab queue judge --pub tcp://10.0.0.1:6700 --pull tcp://10.0.0.1:6702 \\
        --pythagoras tcp://10.0.0.2:6701 --pythagoras tcp://10.0.0.3:6701

With several pythagoras services it asks them in turn, one REQ socket each: a REQ socket
whose reply was lost can never send again, so a service that stays silent for ``timeout``
seconds is dropped (its socket closed, one warning) and the same request goes to the next
one (ZeroMQ's "lazy pirate" pattern). No point is lost or counted twice; only when no service
is left does the judge raise :class:`~wirelab.errors.Timeout`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import MutableMapping, Sequence

import zmq

from wirelab.errors import ConfigError, Timeout
from wirelab.queue._codec import (
    BOOK_NO,
    BOOK_RADIUS_SQUARED,
    BOOK_YES,
    JUDGED_TOPICS,
    RADIUS_SQUARED,
    decode_book_point,
    decode_book_reply,
    decode_points,
    decode_pythagoras_reply,
    encode_book_request,
    encode_pythagoras_request,
    encode_tally,
)
from wirelab.queue.sockets import POLL_MS, connect, make_socket

__all__ = ["Judge"]

log = logging.getLogger(__name__)

_Ctx = zmq.Context[zmq.Socket[bytes]]


class Judge:
    """One judge: connects to the source (``pub``), the tally (``pull``) and pythagoras.

    Args:
        context: the ZeroMQ context its sockets belong to.
        pub: the source's PUB endpoint.
        pull: the tally's PULL endpoint.
        pythagoras: REP endpoints of pythagoras services, asked in turn.
        stop: set it to stop the judge.
        timeout: seconds a pythagoras service may take to answer one request.
        idle_exit: also stop after this many seconds without a batch (None: never).
        counts: where to count ``req`` (requests sent) and ``judged`` (messages pushed).
        wire: ``"book"`` (one point per message, ``Y``/``N``) or ``"batch"``.
    """

    def __init__(
        self,
        context: _Ctx,
        pub: str,
        pull: str,
        pythagoras: Sequence[str],
        *,
        stop: threading.Event,
        timeout: float,
        idle_exit: float | None = None,
        counts: MutableMapping[str, int] | None = None,
        wire: str = "book",
    ) -> None:
        if wire not in ("book", "batch"):
            raise ConfigError(f"wire must be book or batch, not {wire!r}")
        if not pythagoras:
            raise ConfigError("the judge needs at least one pythagoras service")
        self.context = context
        self.pub = pub
        self.pull = pull
        self.services = list(pythagoras)
        self.stop = stop
        self.timeout = timeout
        self.idle_exit = idle_exit
        self.counts = counts if counts is not None else {"req": 0, "judged": 0}
        self.wire = wire

    def run(self) -> None:
        """Judge batches until :attr:`stop` is set (or ``idle_exit`` passes).

        Raises:
            Timeout: no pythagoras service is left that answers.
            RemoteProtocolError: a peer sent something that is not the pipeline's protocol.
        """
        sub = make_socket(self.context, zmq.SUB)
        push = make_socket(self.context, zmq.PUSH)
        live: dict[str, zmq.Socket[bytes]] = {}
        book = self.wire == "book"
        try:
            for topic in JUDGED_TOPICS:
                sub.setsockopt(zmq.SUBSCRIBE, topic)
            connect(sub, self.pub)
            for endpoint in self.services:
                live[endpoint] = make_socket(self.context, zmq.REQ)
                connect(live[endpoint], endpoint)
            connect(push, self.pull)
            turn = 0
            last = time.monotonic()
            while not self.stop.is_set():
                if not sub.poll(POLL_MS, zmq.POLLIN):
                    if self.idle_exit is not None and time.monotonic() - last > self.idle_exit:
                        log.info("no points for %g s; the judge stops", self.idle_exit)
                        return
                    continue
                last = time.monotonic()
                message = sub.recv()
                if book:
                    x, y = decode_book_point(message)
                    request = encode_book_request(x, y)
                else:
                    _, points = decode_points(message)
                    request = encode_pythagoras_request(points)
                while True:
                    if not live:
                        raise Timeout(
                            f"the pythagoras service at {', '.join(self.services)} did not "
                            f"answer within {self.timeout:g} s"
                        )
                    endpoint = list(live)[turn % len(live)]
                    turn += 1
                    req = live[endpoint]
                    req.send(request)
                    self.counts["req"] += 1
                    answered = self._await_reply(req)
                    if answered is None:
                        return  # stopping
                    if answered:
                        break
                    live.pop(endpoint).close(linger=0)
                    if live:
                        log.warning(
                            "pythagoras service %s did not answer within %g s; "
                            "asking the %d other%s",
                            endpoint,
                            self.timeout,
                            len(live),
                            "" if len(live) == 1 else "s",
                        )
                if book:
                    inside_circle = decode_book_reply(req.recv()) < BOOK_RADIUS_SQUARED
                    push.send(BOOK_YES if inside_circle else BOOK_NO)
                else:
                    sums = decode_pythagoras_reply(req.recv(), len(points))
                    inside = sum(1 for s in sums if s < RADIUS_SQUARED)
                    push.send(encode_tally(inside, len(points) - inside))
                self.counts["judged"] += 1
        finally:
            for sock in (sub, push, *live.values()):
                sock.close(linger=0)

    def _await_reply(self, req: zmq.Socket[bytes]) -> bool | None:
        """True once a reply waits, False after ``timeout`` seconds, None when stopping."""
        deadline = time.monotonic() + self.timeout
        while not req.poll(POLL_MS, zmq.POLLIN):
            if self.stop.is_set():
                return None
            if time.monotonic() > deadline:
                return False
        return True
