"""The pipeline's messages: round trips, limits, and any bytes -> values or a protocol error."""

from __future__ import annotations

import contextlib
import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import LocalProtocolError, RemoteProtocolError
from wirelab.queue._codec import (
    MAX_BATCH,
    TOPICS,
    decode_book_point,
    decode_book_reply,
    decode_book_request,
    decode_book_verdict,
    decode_points,
    decode_pythagoras_reply,
    decode_pythagoras_request,
    decode_tally,
    encode_book_point,
    encode_book_reply,
    encode_book_request,
    encode_points,
    encode_pythagoras_error,
    encode_pythagoras_reply,
    encode_pythagoras_request,
    encode_tally,
    topic_of,
)

coord = st.integers(0, 2**32 - 1)
points = st.lists(st.tuples(coord, coord), max_size=50)


def test_topics_are_the_top_bits() -> None:
    assert topic_of(0, 0) == b"00"
    assert topic_of(2**31, 5) == b"10"
    assert topic_of(7, 2**32 - 1) == b"01"
    assert topic_of(2**31, 2**31) == b"11"


@given(points)
def test_points_round_trip_by_topic(pts: list[tuple[int, int]]) -> None:
    for topic in TOPICS:
        mine = [p for p in pts if topic_of(*p) == topic]
        message = encode_points(topic, [c for p in mine for c in p])
        assert message.startswith(topic)
        assert decode_points(message) == (topic, mine)


def test_a_point_under_the_wrong_topic_is_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="another topic"):
        decode_points(b"00" + msgpack.packb([2**31, 0]))
    with pytest.raises(RemoteProtocolError, match="unknown topic"):
        decode_points(b"22" + msgpack.packb([]))
    with pytest.raises(RemoteProtocolError, match="x, y pairs"):
        decode_points(b"00" + msgpack.packb([1, 2, 3]))
    with pytest.raises(RemoteProtocolError, match="integers"):
        decode_points(b"00" + msgpack.packb([1.5, 2]))
    with pytest.raises(RemoteProtocolError, match=r"0 \.\. 2"):
        decode_points(b"00" + msgpack.packb([-1, 2]))
    with pytest.raises(LocalProtocolError, match="over the limit"):
        encode_points(b"00", [0] * (2 * MAX_BATCH + 2))


@given(points)
def test_pythagoras_round_trip(pts: list[tuple[int, int]]) -> None:
    request = encode_pythagoras_request(pts)
    assert decode_pythagoras_request(request) == pts
    sums = decode_pythagoras_reply(encode_pythagoras_reply(pts), len(pts))
    assert sums == [x * x + y * y for x, y in pts]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be"),
        (b'{"points": [[1]]}', "pair"),
        (b'{"points": [[true, 2]]}', "integers"),
        (b'{"points": [[1, 4294967296]]}', "0 .. 2"),
        (b'{"points": [[1, "2"]]}', "integers"),
        (b"[" * 100_000, "not JSON"),
        (json.dumps({"points": [[0, 0]] * (MAX_BATCH + 1)}).encode(), "limit"),
        (b"9" * 5000, "not JSON"),  # Python's int-digits limit
    ],
)
def test_bad_requests(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_pythagoras_request(raw)


def test_error_and_bad_replies() -> None:
    with pytest.raises(RemoteProtocolError, match="refused the request: nope"):
        decode_pythagoras_reply(encode_pythagoras_error("nope"), 1)
    with pytest.raises(RemoteProtocolError, match="hold 2 sums"):
        decode_pythagoras_reply(b'{"sums": [1]}', 2)
    with pytest.raises(RemoteProtocolError, match="other than sums"):
        decode_pythagoras_reply(b'{"sums": [-1]}', 1)


@given(st.integers(0, MAX_BATCH), st.integers(0, MAX_BATCH))
def test_tally_round_trip(inside: int, outside: int) -> None:
    assert decode_tally(encode_tally(inside, outside)) == (inside, outside)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_protocol_error(data: bytes) -> None:
    for decode in (
        decode_points,
        decode_pythagoras_request,
        decode_tally,
        lambda d: decode_pythagoras_reply(d, 1),
    ):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_any_msgpack_value_decodes_or_raises(value: object) -> None:
    packed = msgpack.packb(value)
    for decode in (lambda d: decode_points(b"01" + d), decode_tally):
        with contextlib.suppress(RemoteProtocolError):
            decode(packed)


# -- the book's formats ---------------------------------------------------------------------

book_coord = st.integers(0, 2**12 - 1)


@given(book_coord, book_coord)
def test_book_points_round_trip_and_interleave(x: int, y: int) -> None:
    message = encode_book_point(x, y)
    assert len(message) == 24 and not message.strip(b"01")
    # The book reads x from the even characters and y from the odd ones.
    assert int(message[::2], 2) == x and int(message[1::2], 2) == y
    assert decode_book_point(message) == (x, y)
    assert message[:2] == topic_of(x << 20, y << 20)  # the topic is the top bits, as ours


def test_book_point_examples() -> None:
    assert encode_book_point(0, 0) == b"0" * 24
    assert encode_book_point(4095, 0) == b"10" * 12
    assert encode_book_point(0, 4095) == b"01" * 12
    with pytest.raises(LocalProtocolError):
        encode_book_point(4096, 0)


@pytest.mark.parametrize(
    "raw", [b"0" * 23, b"0" * 25, b"0" * 22 + b"2" + b"0", b"", b"0" * 23 + b"\n", b"\xff" * 24]
)
def test_bad_book_points(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="24 characters"):
        decode_book_point(raw)


def test_book_requests_and_replies() -> None:
    assert encode_book_request(3, 4) == b"[3, 4]"  # pyzmq's send_json((3, 4))
    assert encode_book_reply([3, 4]) == b"25"
    assert decode_book_request([3, 4]) == [3, 4]
    assert decode_book_reply(b"25") == 25
    for bad in (b"-1", b"2.5", b"true", b'"25"', b"[25]", b"nope"):
        with pytest.raises(RemoteProtocolError):
            decode_book_reply(bad)
    with pytest.raises(RemoteProtocolError, match="refused the request: x"):
        decode_book_reply(encode_pythagoras_error("x"))
    assert decode_book_verdict(b"Y") is True and decode_book_verdict(b"N") is False
    for bad in (b"y", b"YES", b"", b"1"):
        with pytest.raises(RemoteProtocolError, match="Y or N"):
            decode_book_verdict(bad)


@given(st.binary(max_size=64))
def test_any_bytes_are_a_book_value_or_a_protocol_error(data: bytes) -> None:
    for decode in (decode_book_point, decode_book_reply, decode_book_verdict):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)
