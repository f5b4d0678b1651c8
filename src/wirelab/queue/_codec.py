"""The Monte-Carlo pi pipeline's messages (sans-I/O): point batches, pythagoras, tallies.

Application layer over ZeroMQ (ZMTP 3, rfc.zeromq.org/spec/23): ZeroMQ delivers whole
messages, so this codec only turns them into values and back, checks every limit, and raises
:class:`~wirelab.errors.ProtocolError` for anything else. No pickle: a pickle from the network
runs code; these are data only.

Two sets of formats. **The book's** (``queuepi.py``; what every stage speaks by default, see
the end of this module): one point per message as 24 characters of ``0``/``1``, ``[x, y]``
requests answered by one JSON number, ``Y``/``N`` verdicts. **Ours, batched** (opt-in,
``--batch``/``wire="batch"``), below:

* **Points** (PUB/SUB, msgpack): a random point is two 32-bit unsigned integers ``(x, y)``.
  The book sent each as a 64-character string of ``0``/``1`` interleaving the bits of x and
  y, so the first two characters are the top bits of x and y; subscribers filter on that
  prefix. We keep that prefix (``b"00"`` ... ``b"11"``) as the first two bytes of each
  message, followed by a batch of points of that topic as a msgpack array
  ``[x0, y0, x1, y1, ...]``: one message per thousand points instead of one per point. (One
  frame, not a multipart message, so a message is always sent whole.)
* **Pythagoras** (REQ/REP, JSON, as in the book): the request ``{"points": [[x, y], ...]}``,
  the reply ``{"sums": [x*x + y*y, ...]}`` or ``{"error": "..."}``. The service tells the
  two request formats apart by the JSON value (an array is the book's, an object ours).
* **Tally** (PUSH/PULL, msgpack): ``[inside, outside]`` counts of one decided batch.

A point is inside the quarter circle of radius 2**32 when x**2 + y**2 < 2**64; topic ``00``
(both coordinates below 2**31) always is, so its subscriber needs no arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgpack

from wirelab.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "ALWAYS_INSIDE_TOPICS",
    "BOOK_BITS",
    "BOOK_NO",
    "BOOK_RADIUS_SQUARED",
    "BOOK_YES",
    "JUDGED_TOPICS",
    "MAX_BATCH",
    "MAX_MESSAGE",
    "RADIUS_SQUARED",
    "TOPICS",
    "decode_book_point",
    "decode_book_reply",
    "decode_book_request",
    "decode_book_verdict",
    "decode_points",
    "decode_pythagoras_reply",
    "decode_pythagoras_request",
    "decode_tally",
    "encode_book_point",
    "encode_book_reply",
    "encode_book_request",
    "encode_points",
    "encode_pythagoras_error",
    "encode_pythagoras_reply",
    "encode_pythagoras_request",
    "encode_tally",
    "load_request",
    "points_of_request",
    "topic_of",
]

#: Coordinates are unsigned 32-bit integers.
COORD_LIMIT = 1 << 32
_HALF = 1 << 31
#: The circle's radius squared: inside means x**2 + y**2 < 2**64.
RADIUS_SQUARED = 1 << 64
#: Every topic (the top bits of x and y).
TOPICS = (b"00", b"01", b"10", b"11")
#: Topics inside the circle whatever the other bits (the book's "always_yes" subscriber).
ALWAYS_INSIDE_TOPICS = (b"00",)
#: Topics that need the arithmetic (the book's "judge" subscriber).
JUDGED_TOPICS = (b"01", b"10", b"11")
#: Most points in one message.
MAX_BATCH = 100_000
#: Largest message any socket of the pipeline accepts (ZMQ_MAXMSGSIZE): a full JSON batch of
#: MAX_BATCH points is about 2.3 MB, with room to spare.
MAX_MESSAGE = 4 << 20


def topic_of(x: int, y: int) -> bytes:
    """The topic of a point: the top bits of x and y (``b"10"`` when only x's is set)."""
    return TOPICS[(x >> 31) << 1 | (y >> 31)]


def _check_point(x: object, y: object) -> tuple[int, int]:
    if type(x) is not int or type(y) is not int:
        raise RemoteProtocolError("a point's coordinates must be integers")
    if not (0 <= x < COORD_LIMIT and 0 <= y < COORD_LIMIT):
        raise RemoteProtocolError("a point's coordinates must be in 0 .. 2**32-1")
    return x, y


def _check_count(count: int) -> None:
    if count > MAX_BATCH:
        raise LocalProtocolError(f"a batch of {count} points is over the limit of {MAX_BATCH}")


# -- points (PUB/SUB) ---------------------------------------------------------------------------


def encode_points(topic: bytes, flat: Sequence[int]) -> bytes:
    """One PUB message: the topic, then ``[x0, y0, x1, y1, ...]`` as msgpack.

    The producer must only put points of ``topic`` in ``flat`` (see :func:`topic_of`).
    """
    if topic not in TOPICS:
        raise LocalProtocolError(f"unknown topic {topic!r}")
    _check_count(len(flat) // 2)
    packed: bytes = msgpack.packb(list(flat))
    return topic + packed


def _unpack(data: bytes, what: str) -> Any:
    if len(data) > MAX_MESSAGE:
        raise RemoteProtocolError(f"{what} of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        return msgpack.unpackb(
            data, raw=True, max_array_len=2 * MAX_BATCH, max_map_len=0, max_bin_len=0
        )
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise RemoteProtocolError(f"{what} is not valid msgpack: {exc}") from exc


def decode_points(message: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The topic and the points of one PUB message.

    Raises:
        RemoteProtocolError: an unknown topic, not a msgpack array of x, y pairs in range,
            or a point that does not belong to the topic.
    """
    topic = message[:2]
    if topic not in TOPICS:
        raise RemoteProtocolError(f"a point batch has an unknown topic {topic!r}")
    flat = _unpack(message[2:], "a point batch")
    if not isinstance(flat, list) or len(flat) % 2:
        raise RemoteProtocolError("a point batch must be an array of x, y pairs")
    high_x, high_y = topic[0] == 0x31, topic[1] == 0x31  # b"1"
    points = []
    for i in range(0, len(flat), 2):
        x, y = _check_point(flat[i], flat[i + 1])
        if (x >= _HALF) != high_x or (y >= _HALF) != high_y:
            raise RemoteProtocolError(f"a point of another topic arrived under {topic!r}")
        points.append((x, y))
    return topic, points


# -- pythagoras (REQ/REP) -----------------------------------------------------------------------


def encode_pythagoras_request(points: Sequence[tuple[int, int]]) -> bytes:
    """The JSON request for a batch of points."""
    _check_count(len(points))
    return json.dumps({"points": [list(p) for p in points]}, separators=(",", ":")).encode()


def decode_pythagoras_request(data: bytes) -> list[tuple[int, int]]:
    """The points of a request.

    Raises:
        RemoteProtocolError: not JSON, not ``{"points": [[x, y], ...]}``, or over a limit.
    """
    return points_of_request(load_request(data))


def load_request(data: bytes) -> Any:
    """A pythagoras request parsed as JSON (either format), within the size limit.

    Raises:
        RemoteProtocolError: over the limit, or not JSON.
    """
    if len(data) > MAX_MESSAGE:
        raise RemoteProtocolError(f"request of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"request is not JSON: {exc}") from exc


def points_of_request(doc: Any) -> list[tuple[int, int]]:
    """The points of a parsed batched request ``{"points": [[x, y], ...]}``.

    Raises:
        RemoteProtocolError: not that shape, or over a limit.
    """
    points = doc.get("points") if isinstance(doc, dict) else None
    if not isinstance(points, list):
        raise RemoteProtocolError('request must be [x, y] or {"points": [[x, y], ...]}')
    if len(points) > MAX_BATCH:
        raise RemoteProtocolError(f"request has {len(points)} points; the limit is {MAX_BATCH}")
    checked = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            raise RemoteProtocolError("each point must be a pair [x, y]")
        checked.append(_check_point(point[0], point[1]))
    return checked


def encode_pythagoras_reply(points: Sequence[tuple[int, int]]) -> bytes:
    """The reply to a request: the sum of squares of each point, in order."""
    return json.dumps({"sums": [x * x + y * y for x, y in points]}, separators=(",", ":")).encode()


def encode_pythagoras_error(message: str) -> bytes:
    """The reply to a request the service could not read."""
    return json.dumps({"error": message}).encode()


def decode_pythagoras_reply(data: bytes, expected: int) -> list[int]:
    """The sums of squares in a reply to a request of ``expected`` points.

    Raises:
        RemoteProtocolError: an error reply, or a reply that does not answer the request.
    """
    if len(data) > MAX_MESSAGE:
        raise RemoteProtocolError(f"reply of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"pythagoras reply is not JSON: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        raise RemoteProtocolError(f"pythagoras refused the request: {doc['error']}")
    sums = doc.get("sums") if isinstance(doc, dict) else None
    if not isinstance(sums, list) or len(sums) != expected:
        raise RemoteProtocolError(f"pythagoras reply must hold {expected} sums")
    if not all(type(s) is int and 0 <= s < 2 * RADIUS_SQUARED for s in sums):
        raise RemoteProtocolError("pythagoras reply holds something other than sums of squares")
    return sums


# -- tally (PUSH/PULL) --------------------------------------------------------------------------


def encode_tally(inside: int, outside: int) -> bytes:
    """One decided batch: how many points fell inside the circle and how many outside."""
    packed: bytes = msgpack.packb([inside, outside])
    return packed


def decode_tally(data: bytes) -> tuple[int, int]:
    """The counts of a tally message.

    Raises:
        RemoteProtocolError: not ``[inside, outside]`` with small non-negative integers.
    """
    counts = _unpack(data, "a tally message")
    if (
        not isinstance(counts, list)
        or len(counts) != 2
        or not all(type(c) is int and 0 <= c <= MAX_BATCH for c in counts)
    ):
        raise RemoteProtocolError("a tally message must be [inside, outside]")
    return counts[0], counts[1]


# -- the book's own formats (queuepi.py), one point per message ---------------------------------
#
# The book's stages exchange one point per message: the source publishes a string of 24
# characters "0"/"1" (a random 24-bit number, so x and y have 12 bits each, interleaved: x is
# the characters at even positions, y those at odd positions, and the first two characters
# are the topic); the judge sends pythagoras the JSON array [x, y] (pyzmq's ``send_json``,
# Python's default separators: ``[3, 4]``) and gets back the JSON number x² + y²; each verdict
# is the one-character string "Y" or "N"; the tally counts a "Y" as inside. The circle's
# radius is 2**12, so a point is inside when x² + y² < 2**24.

#: Characters in one of the book's points (12 bits of x and 12 of y).
BOOK_BITS = 24
#: The book's radius squared: inside means x**2 + y**2 < 2**24.
BOOK_RADIUS_SQUARED = 1 << BOOK_BITS
#: Largest number the book's pythagoras request may hold here (the book's had no limit).
BOOK_NUMBER_LIMIT = 1 << 64
#: The book's two verdicts.
BOOK_YES, BOOK_NO = b"Y", b"N"


def encode_book_point(x: int, y: int) -> bytes:
    """One of the book's PUB messages: x and y (12 bits each), their bits interleaved."""
    half = BOOK_BITS // 2
    if not (0 <= x < 1 << half and 0 <= y < 1 << half):
        raise LocalProtocolError(f"a book point's coordinates must be in 0 .. 2**{half}-1")
    xs, ys = format(x, f"0{half}b"), format(y, f"0{half}b")
    return "".join(a + b for a, b in zip(xs, ys, strict=True)).encode()


def decode_book_point(message: bytes) -> tuple[int, int]:
    """x and y of one of the book's PUB messages.

    Raises:
        RemoteProtocolError: not 24 characters of ``0`` and ``1``.
    """
    if len(message) != BOOK_BITS or message.strip(b"01"):
        raise RemoteProtocolError(
            f"a book point must be {BOOK_BITS} characters of 0 and 1, not {message[:40]!r}"
        )
    text = message.decode()
    return int(text[::2], 2), int(text[1::2], 2)


def encode_book_request(x: int, y: int) -> bytes:
    """The book judge's request: the JSON array ``[x, y]``, as pyzmq's ``send_json`` writes it."""
    return json.dumps([x, y]).encode()


def decode_book_request(doc: object) -> list[int]:
    """The numbers of a book-style request (an already parsed JSON array).

    Raises:
        RemoteProtocolError: not an array of at most MAX_BATCH integers below 2**64.
    """
    if not isinstance(doc, list):
        raise RemoteProtocolError('request must be [x, y] or {"points": [[x, y], ...]}')
    if len(doc) > MAX_BATCH:
        raise RemoteProtocolError(f"request has {len(doc)} numbers; the limit is {MAX_BATCH}")
    if not all(type(n) is int and abs(n) < BOOK_NUMBER_LIMIT for n in doc):
        raise RemoteProtocolError("a book-style request must be an array of integers below 2**64")
    return doc


def encode_book_reply(numbers: Sequence[int]) -> bytes:
    """The book's pythagoras reply: the JSON number that is the sum of the squares."""
    return json.dumps(sum(n * n for n in numbers)).encode()


def decode_book_reply(data: bytes) -> int:
    """The sum in a book-style pythagoras reply.

    Raises:
        RemoteProtocolError: an error reply, or not a non-negative JSON integer.
    """
    if len(data) > MAX_MESSAGE:
        raise RemoteProtocolError(f"reply of {len(data)} bytes is over {MAX_MESSAGE}")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"pythagoras reply is not JSON: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        raise RemoteProtocolError(f"pythagoras refused the request: {doc['error']}")
    if type(doc) is not int or doc < 0:
        raise RemoteProtocolError(f"pythagoras reply must be a sum of squares, not {data[:40]!r}")
    return doc


def decode_book_verdict(data: bytes) -> bool:
    """True for the book's ``Y`` (inside), False for ``N``.

    Raises:
        RemoteProtocolError: anything else.
    """
    if data == BOOK_YES:
        return True
    if data == BOOK_NO:
        return False
    raise RemoteProtocolError(f"a verdict must be Y or N, not {data[:40]!r}")
