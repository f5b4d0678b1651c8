"""The Monte-Carlo pi pipeline (F44-F46): PUB/SUB, REQ/REP and PUSH/PULL without a broker.

The book's ``queuepi.py``, rebuilt::

    source --PUB "00"--> always_yes ---PUSH--+
       |                                      +--> tally (PULL): pi ~ 4 * inside / points
       +---PUB "01","10","11"--> judge --PUSH-+
                                   |  ^
                               REQ v  | REP
                                pythagoras

What changed, and why:

* **No slow-joiner loss.** A PUB socket drops messages for subscribers whose subscription has
  not reached it yet, so the book lost its first points. Our source is an XPUB socket with
  ``XPUB_VERBOSE``: it *receives* every subscription, and publishes only once all four topics
  are subscribed. From then on ZeroMQ delivers every message (``XPUB_NODROP``: a full queue
  blocks the source instead of dropping), and the tally counts exactly as many points as were
  published; the tests check that.
* **The book's wire by default, batches on request.** With ``wire="book"`` every message is
  the book's: one point per PUB message as 24 characters of ``0``/``1``, one ``[x, y]``
  request per judged point, answered with one JSON number, and one ``Y``/``N`` verdict per
  point on the PUSH/PULL leg, so any of the book's stages can take the place of ours. With
  ``wire="batch"`` one message carries up to ``batch`` points of one topic (msgpack), one
  pythagoras request carries a batch (JSON), one tally message counts a batch: 1e6 points
  take seconds, not minutes; no book stage can join that run.
* **Ephemeral ports** by default (``tcp://127.0.0.1:*``, read back from ``LAST_ENDPOINT``),
  the book's 6700-6702 on request, or ``inproc://`` between threads.
* **Clean ends.** The run stops when the tally has every point. A dead worker or service
  shows as a :class:`~wirelab.errors.Timeout` naming what did not answer; every loop polls
  with a timeout and checks a stop flag, every socket closes with linger 0, every thread is
  joined, and the context is terminated.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import threading
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq

from wirelab.config import LOOPBACK
from wirelab.errors import ConfigError, RemoteProtocolError, Timeout
from wirelab.queue._codec import (
    ALWAYS_INSIDE_TOPICS,
    BOOK_BITS,
    BOOK_YES,
    MAX_BATCH,
    TOPICS,
    decode_book_point,
    decode_book_verdict,
    decode_points,
    decode_tally,
    encode_points,
    encode_tally,
)
from wirelab.queue.judge import Judge
from wirelab.queue.pythagoras import serve_pythagoras
from wirelab.queue.sockets import POLL_MS, bind, connect, make_socket, tcp_endpoint

__all__ = ["DEFAULT_BATCH", "DEFAULT_TIMEOUT", "WIRES", "PiPipeline", "PiResult", "run_pi"]

log = logging.getLogger(__name__)

#: Points per message on the batched wire.
DEFAULT_BATCH = 1000
#: The message formats: the book's (one point per message), or ours (batches, msgpack).
WIRES = ("book", "batch")
#: Seconds without progress (or without a pythagoras reply) before the run gives up.
DEFAULT_TIMEOUT = 5.0
_Ctx = zmq.Context[zmq.Socket[bytes]]
#: The sockets that bind: the source's, the pythagoras service's, the tally's.
_ROLES = ("pub", "rep", "pull")


@dataclass(frozen=True)
class PiResult:
    """What a run measured.

    ``points`` is what was asked for; ``tallied`` is what the tally really counted (the run
    ends when they are equal, or raises).
    """

    points: int
    tallied: int
    inside: int
    seconds: float
    transport: str
    batch: int
    messages: int
    published: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    wire: str = "batch"

    @property
    def estimate(self) -> float:
        """4 x the share of points inside the quarter circle."""
        return 4 * self.inside / self.tallied if self.tallied else 0.0

    @property
    def error(self) -> float:
        """Distance from the real pi."""
        return abs(self.estimate - math.pi)

    @property
    def points_per_second(self) -> float:
        """Points decided per second."""
        return self.tallied / self.seconds if self.seconds > 0 else 0.0

    @property
    def messages_per_second(self) -> float:
        """ZeroMQ messages (PUB, REQ, REP, PUSH) per second."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "points": self.points,
            "tallied": self.tallied,
            "inside": self.inside,
            "estimate": self.estimate,
            "error": round(self.error, 6),
            "seconds": round(self.seconds, 4),
            "transport": self.transport,
            "wire": self.wire,
            "batch": self.batch,
            "messages": self.messages,
            "messages_per_second": round(self.messages_per_second, 1),
            "points_per_second": round(self.points_per_second, 1),
            "published": self.published,
            "endpoints": self.endpoints,
        }


class PiPipeline:
    """One run of the pipeline. Most callers want :func:`run_pi`.

    Args:
        points: how many random points to publish (each decided exactly once).
        transport: ``"tcp"`` (loopback, or ``host``) or ``"inproc"`` (threads only).
        wire: ``"book"`` (the book's messages, one point each: a book stage can join) or
            ``"batch"`` (``batch`` points per message, msgpack and JSON: much faster).
        batch: points per message on the batched wire (1 on the book's).
        seed: for a repeatable run.
        host: address the tcp sockets bind.
        ports: fixed ports ``{"pub": 6700, "rep": 6701, "pull": 6702}``; missing ones are
            ephemeral.
        pythagoras: endpoints of running pythagoras services to use instead of our own
            (``["tcp://10.0.0.2:6701"]``); the judge's REQ socket spreads requests over them.
        timeout: seconds a pythagoras reply or a full subscriber queue may hold a stage up
            (the error then names that stage); the run also gives up when the tally has
            heard nothing for twice as long.
        on_progress: called from the tally's thread as ``on_progress(done, total)``.
        context: a ZeroMQ context to use (default: a private one, terminated at the end).
    """

    def __init__(
        self,
        points: int,
        *,
        transport: str = "tcp",
        wire: str = "book",
        batch: int = DEFAULT_BATCH,
        seed: int | None = None,
        host: str = LOOPBACK,
        ports: Mapping[str, int] | None = None,
        pythagoras: Sequence[str] = (),
        judge: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        on_progress: Callable[[int, int], None] | None = None,
        context: _Ctx | None = None,
    ) -> None:
        if points < 1:
            raise ConfigError("the pipeline needs at least one point")
        if not 1 <= batch <= MAX_BATCH:
            raise ConfigError(f"batch must be between 1 and {MAX_BATCH}, not {batch}")
        if wire not in WIRES:
            raise ConfigError(f"wire must be book or batch, not {wire!r}")
        if transport not in ("tcp", "inproc"):
            raise ConfigError(f"transport must be tcp or inproc, not {transport!r}")
        if transport == "inproc" and (ports or host != LOOPBACK):
            raise ConfigError("inproc endpoints have no host or port")
        self.points = points
        self.transport = transport
        self.wire = wire
        self.batch = batch if wire == "batch" else 1
        self.timeout = timeout
        if not judge and (pythagoras or transport == "inproc"):
            raise ConfigError(
                "with an external judge, pythagoras is the judge's business, over tcp"
            )
        self.external = list(pythagoras)
        self.local_judge = judge
        self.on_progress = on_progress
        self._rng = random.Random(seed)
        self._context = context
        if transport == "inproc":
            tag = secrets.token_hex(4)
            self._wanted = {name: f"inproc://wirelab-pi-{tag}-{name}" for name in _ROLES}
        else:
            self._wanted = {n: tcp_endpoint(host, (ports or {}).get(n)) for n in _ROLES}
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._bound: dict[str, str] = {}
        self._bound_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tallied = 0
        self._inside = 0
        self._last_progress = time.monotonic()
        self._counts = {"pub": 0, "req": 0, "yes": 0, "judged": 0}  # one writer each
        self._published = {t.decode(): 0 for t in TOPICS}

    # -- orchestration ------------------------------------------------------------------------

    def run(self) -> PiResult:
        """Run to the end and return the result.

        Raises:
            Timeout: a worker or service stopped answering (the message names it).
            ConfigError: an endpoint could not be bound.
            RemoteProtocolError: a peer sent something that is not the pipeline's protocol.
        """
        context: _Ctx = self._context or zmq.Context()
        began = time.perf_counter()
        try:
            own_pythagoras = self.local_judge and not self.external
            binders = ["pub", "pull"] + (["rep"] if own_pythagoras else [])
            if own_pythagoras:
                self._start("pythagoras", self._pythagoras, context)
            self._start("tally", self._tally, context)
            self._start("source", self._source, context)
            self._wait_bound(binders)
            rep = self.external or ([self._bound["rep"]] if own_pythagoras else [])
            self._start("always-yes", self._always_yes, context)
            if self.local_judge:
                self._start("judge", self._judge, context, rep)
            self._wait_done()
        finally:
            self._shutdown(context)
        return PiResult(
            self.points,
            self._tallied,
            self._inside,
            time.perf_counter() - began,
            self.transport,
            self.batch,
            sum(self._counts.values()) + self._counts["req"],  # a request has a reply
            dict(self._published),
            {
                "pythagoras": ", ".join(rep) if rep else "(the external judge's)",
                **{k: v for k, v in self._bound.items() if k != "rep"},
            },
            self.wire,
        )

    def _start(self, name: str, target: Callable[..., None], *args: object) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as exc:  # reported by run(), never lost
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=guarded, name=f"wirelab-pi-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _raise_first_error(self) -> None:
        with self._lock:
            if self._errors:
                raise self._errors[0]

    def _wait_bound(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.timeout
        while not all(n in self._bound for n in names):
            self._raise_first_error()
            if time.monotonic() > deadline:
                raise Timeout(f"the pipeline's sockets were not bound within {self.timeout:g} s")
            self._bound_event.wait(0.02)
            self._bound_event.clear()

    def _ready(self, name: str, endpoint: str) -> None:
        with self._lock:
            self._bound[name] = endpoint
        self._bound_event.set()

    def _wait_done(self) -> None:
        while not self._done.wait(0.02):
            self._raise_first_error()
            with self._lock:
                idle = time.monotonic() - self._last_progress
                done = self._tallied
            if idle > 2 * self.timeout:  # a stage's own deadline (1x) names the culprit first
                raise Timeout(
                    f"no decision reached the tally for {2 * self.timeout:g} s "
                    f"({done:,} of {self.points:,} points counted): is a worker dead?"
                )
        self._raise_first_error()

    def _shutdown(self, context: _Ctx) -> None:
        self._stop.set()
        stuck = []
        for thread in self._threads:
            thread.join(5.0)
            if thread.is_alive():
                stuck.append(thread.name)
        if stuck:
            log.error("pipeline threads did not stop: %s", ", ".join(stuck))
        elif self._context is None:
            context.term()

    def _progress(self, inside: int, decided: int) -> None:
        with self._lock:
            self._inside += inside
            self._tallied += decided
            self._last_progress = time.monotonic()
            done = self._tallied
        if done > self.points:
            raise RemoteProtocolError(f"the tally counted {done} decisions for {self.points}")
        if self.on_progress is not None:
            self.on_progress(done, self.points)
        if done == self.points:
            self._done.set()

    # -- stages (each runs in its own thread, with its own sockets) ----------------------------

    def _pythagoras(self, context: _Ctx) -> None:
        serve_pythagoras(
            context, self._wanted["rep"], self._stop, ready=lambda e: self._ready("rep", e)
        )

    def _tally(self, context: _Ctx) -> None:
        pull = make_socket(context, zmq.PULL)
        try:
            self._ready("pull", bind(pull, self._wanted["pull"]))
            book = self.wire == "book"
            while not self._stop.is_set():
                if not pull.poll(POLL_MS, zmq.POLLIN):
                    continue
                if book:
                    self._progress(int(decode_book_verdict(pull.recv())), 1)
                else:
                    inside, outside = decode_tally(pull.recv())
                    self._progress(inside, inside + outside)
        finally:
            pull.close(linger=0)

    def _source(self, context: _Ctx) -> None:
        pub = make_socket(context, zmq.XPUB)
        try:
            pub.setsockopt(zmq.XPUB_VERBOSE, 1)
            pub.setsockopt(zmq.XPUB_NODROP, 1)
            pub.setsockopt(zmq.SNDTIMEO, POLL_MS)
            self._ready("pub", bind(pub, self._wanted["pub"]))
            self._await_subscribers(pub)
            if self.wire == "book":
                self._publish_book_points(pub)
                self._stop.wait()
                return
            for start in range(0, self.points, self.batch):
                count = min(self.batch, self.points - start)
                coords = array("I")
                coords.frombytes(self._rng.randbytes(4 * 2 * count))
                groups: list[list[int]] = [[], [], [], []]
                for i in range(0, 2 * count, 2):
                    x, y = coords[i], coords[i + 1]
                    groups[(x >> 31) << 1 | (y >> 31)].extend((x, y))
                for topic, flat in zip(TOPICS, groups, strict=True):
                    if flat and not self._publish(pub, encode_points(topic, flat)):
                        return
                    self._published[topic.decode()] += len(flat) // 2
            # Closing with linger 0 would drop what still waits in the queues: stay open
            # until the tally has every point (or the run is abandoned).
            self._stop.wait()
        finally:
            pub.close(linger=0)

    def _publish_book_points(self, pub: zmq.Socket[bytes]) -> None:
        """The book's bitsource: one random 24-bit number per message, as 0s and 1s."""
        for _ in range(self.points):
            message = format(self._rng.getrandbits(BOOK_BITS), f"0{BOOK_BITS}b").encode()
            if not self._publish(pub, message):
                return
            self._published[message[:2].decode()] += 1

    def _await_subscribers(self, pub: zmq.Socket[bytes]) -> None:
        """Wait until every topic is subscribed: no message published before is lost."""
        missing = set(TOPICS)
        deadline = time.monotonic() + self.timeout
        while missing and not self._stop.is_set():
            if time.monotonic() > deadline:
                names = ", ".join(sorted(t.decode() for t in missing))
                hint = "" if self.local_judge else " (is a `wirelab queue judge` running?)"
                raise Timeout(f"no subscriber for topics {names} within {self.timeout:g} s{hint}")
            if pub.poll(POLL_MS, zmq.POLLIN):
                message = pub.recv()
                if message[:1] == b"\x01":
                    missing.discard(message[1:])
        with self._lock:
            self._last_progress = time.monotonic()

    def _publish(self, pub: zmq.Socket[bytes], message: bytes) -> bool:
        """Send, waiting while subscribers' queues are full; False when asked to stop."""
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set():
            try:
                pub.send(message)
            except zmq.Again:
                if time.monotonic() > deadline:
                    raise Timeout(
                        f"subscribers stopped reading for {self.timeout:g} s: is a worker dead?"
                    ) from None
                continue
            self._counts["pub"] += 1
            return True
        return False

    def _subscriber(self, context: _Ctx, topics: Sequence[bytes]) -> zmq.Socket[bytes]:
        sub = make_socket(context, zmq.SUB)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        connect(sub, self._bound["pub"])
        return sub

    def _always_yes(self, context: _Ctx) -> None:
        sub = self._subscriber(context, ALWAYS_INSIDE_TOPICS)
        push = make_socket(context, zmq.PUSH)
        try:
            connect(push, self._bound["pull"])
            while not self._stop.is_set():
                if not sub.poll(POLL_MS, zmq.POLLIN):
                    continue
                message = sub.recv()
                if self.wire == "book":
                    decode_book_point(message)  # a bad message from the source is an error
                    push.send(BOOK_YES)
                else:
                    _, points = decode_points(message)  # it checks each point's topic
                    push.send(encode_tally(len(points), 0))
                self._counts["yes"] += 1
        finally:
            sub.close(linger=0)
            push.close(linger=0)

    def _judge(self, context: _Ctx, services: list[str]) -> None:
        Judge(
            context,
            self._bound["pub"],
            self._bound["pull"],
            services,
            stop=self._stop,
            timeout=self.timeout,
            counts=self._counts,
            wire=self.wire,
        ).run()


def run_pi(points: int = 1_000_000, **options: Any) -> PiResult:
    """Estimate pi with ``points`` random points through the pipeline.

    Takes the keyword arguments of :class:`PiPipeline`::

        result = run_pi(1_000_000, transport="inproc", seed=1)
        print(result.estimate, result.messages_per_second)
    """
    return PiPipeline(points, **options).run()
