"""The pythagoras service (F45): a ZeroMQ REP service that returns sums of squares as JSON.

Application layer over ZeroMQ REQ/REP (rfc.zeromq.org/spec/28). It speaks two request
formats on the same socket, told apart by the JSON value:

* the book's (``queuepi.py``): the array ``[x, y]`` (any count of integers), answered with
  the JSON number x² + y², byte for byte what the book's service sends, so the book's judge
  can use ours;
* ours, batched: ``{"points": [[x, y], ...]}``, answered with ``{"sums": [...]}``.

The book's service trusted its input; this one answers a bad request with
``{"error": "..."}``, logs it (one line per second at most), and keeps serving. It is the
pipeline's one long-lived server, so the lab runs it too (``queue.rep``, port 6701), and
``wirelab queue serve`` runs it anywhere: point the pipeline's judges at several of them
(``--pythagoras`` repeated) to spread the arithmetic over hosts.

**Why a ROUTER socket, not REP.** A REP socket keeps the reply's routing envelope in
libzmq's state between ``recv`` and ``send``. A hostile peer can desynchronise it: random
bytes on a raw TCP connection parse as ZMTP 1.0 frames, and when that connection's pipe is
already closing, libzmq's REP discards a malformed envelope without resetting its "more"
flag, so the *next* legitimate request's envelope is swallowed and its reply is dropped: the
client waits forever (issue 11, item 5). On a ROUTER socket we read the whole envelope
ourselves and send every reply as one complete multipart message, so each request gets its
reply (or an error reply) and one peer's garbage cannot touch another peer's exchange. To a
REQ client (the book's, or ours) the two are indistinguishable on the wire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import zmq

from wirelab.errors import ConfigError, RemoteProtocolError, Timeout
from wirelab.queue._codec import (
    decode_book_reply,
    decode_book_request,
    decode_pythagoras_reply,
    encode_book_reply,
    encode_book_request,
    encode_pythagoras_error,
    encode_pythagoras_reply,
    encode_pythagoras_request,
    load_request,
    points_of_request,
)
from wirelab.queue.sockets import POLL_MS, bind, connect, make_socket

__all__ = ["MAX_ENVELOPE", "answer", "ask_pythagoras", "serve_pythagoras"]

log = logging.getLogger(__name__)

#: Most routing frames a request may carry before its empty delimiter (a REQ client adds
#: none; each ROUTER/DEALER proxy on the way adds one).
MAX_ENVELOPE = 16
#: Seconds between two "bad request" log lines; the ones in between are counted.
LOG_EVERY = 1.0


class _RateLimitedLog:
    """At most one warning per LOG_EVERY seconds, saying how many were held back."""

    def __init__(self) -> None:
        self._last = -LOG_EVERY
        self._held = 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < LOG_EVERY:
            self._held += 1
            return
        more = f" (and {self._held} more bad requests)" if self._held else ""
        log.warning("pythagoras: bad request: %s%s", message[:200], more)
        self._last, self._held = now, 0


def answer(request: list[bytes], *, report: Callable[[str], None] | None = None) -> bytes:
    """One request's reply (the frames after the envelope): sums, or an error reply.

    ``[x, y]`` gets the book's reply (one JSON number), ``{"points": ...}`` ours; anything
    else gets ``{"error": "..."}``, and ``report`` (default: a log warning) hears why.
    """
    try:
        if len(request) != 1:
            raise RemoteProtocolError(f"request must be one frame, not {len(request)}")
        doc = load_request(request[0])
        if isinstance(doc, list):
            return encode_book_reply(decode_book_request(doc))
        return encode_pythagoras_reply(points_of_request(doc))
    except RemoteProtocolError as exc:
        (report or (lambda m: log.warning("pythagoras: bad request: %s", m)))(str(exc))
        return encode_pythagoras_error(str(exc))


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """A ROUTER message ``[id, ..., b"", body...]`` as (envelope with delimiter, body).

    A message without a delimiter (not a REQ client's) or with a deep envelope gets the
    envelope ``[id, b""]`` and a body that fails :func:`answer`'s checks, so it is still
    answered, with an error.
    """
    for i, frame in enumerate(frames[1 : MAX_ENVELOPE + 2], start=1):
        if not frame:
            return frames[: i + 1], frames[i + 1 :]
    return [frames[0], b""], frames[1:]


def serve_pythagoras(
    context: zmq.Context[zmq.Socket[bytes]],
    endpoint: str,
    stop: threading.Event,
    *,
    ready: Callable[[str], None] | None = None,
) -> int:
    """Answer requests on ``endpoint`` until ``stop`` is set; return how many were answered.

    Every request is answered, a bad one with an error reply; a reply whose client has gone
    is dropped by ZeroMQ without touching anyone else's.

    Args:
        context: the ZeroMQ context (the caller terminates it).
        endpoint: where to bind (``tcp://127.0.0.1:*``, ``inproc://pythagoras`` ...).
        stop: set it to stop the loop (checked every 50 ms).
        ready: called with the bound endpoint, once bound.

    Raises:
        ConfigError: the endpoint cannot be bound.
    """
    sock = make_socket(context, zmq.ROUTER)
    answered = 0
    bad = _RateLimitedLog()
    try:
        bound = bind(sock, endpoint)
        log.info("pythagoras listening at %s", bound)
        if ready is not None:
            ready(bound)
        while not stop.is_set():
            if not sock.poll(POLL_MS, zmq.POLLIN):
                continue
            envelope, body = split_envelope(sock.recv_multipart())
            sock.send_multipart([*envelope, answer(body, report=bad.warning)])
            answered += 1
    finally:
        sock.close(linger=0)
    return answered


def ask_pythagoras(
    context: zmq.Context[zmq.Socket[bytes]],
    endpoint: str,
    points: list[tuple[int, int]],
    *,
    timeout: float = 5.0,
    wire: str = "book",
) -> list[int]:
    """The sums of squares of ``points``, asked with a fresh REQ socket.

    On the book's wire (the default) each point is one request ``[x, y]`` and each reply
    one JSON number, as the book's judge asks; so it works against the book's own
    pythagoras as well as ours. On the batched wire one request carries every point.

    Raises:
        Timeout: no reply within ``timeout`` seconds (for each request).
        RemoteProtocolError: an error reply, or a reply that does not fit the request.
    """
    if wire not in ("book", "batch"):
        raise ConfigError(f"wire must be book or batch, not {wire!r}")
    sock = make_socket(context, zmq.REQ)
    try:
        connect(sock, endpoint)

        def exchange(request: bytes) -> bytes:
            sock.send(request)
            if not sock.poll(int(timeout * 1000), zmq.POLLIN):
                raise Timeout(
                    f"the pythagoras service at {endpoint} did not answer in {timeout:g} s"
                )
            return sock.recv()

        if wire == "batch":
            return decode_pythagoras_reply(exchange(encode_pythagoras_request(points)), len(points))
        return [decode_book_reply(exchange(encode_book_request(x, y))) for x, y in points]
    finally:
        sock.close(linger=0)
