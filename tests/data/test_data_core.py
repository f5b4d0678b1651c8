"""The chapter 5 summary replies: format and parse, and any bytes in."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.data._core import (
    MAX_SUMMARY,
    Summary,
    Tally,
    format_error,
    format_summary,
    parse_summary,
)
from wirelab.errors import RemoteProtocolError

digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
summaries = st.builds(
    Summary,
    size=st.integers(0, 2**63),
    sha256=digests,
    blocks=st.none() | st.integers(0, 2**63),
)


def test_the_stream_summary_is_one_line() -> None:
    tally = Tally()
    tally.add(b"hello", block=False)
    line = format_summary(tally.summary(blocks=False))
    assert line == b"received 5 bytes, sha256 " + hashlib.sha256(b"hello").hexdigest().encode() + (
        b"\n"
    )


def test_the_blocks_summary_counts_blocks_and_says_one_block() -> None:
    reply = format_summary(Tally.of([b"a"]).summary())
    assert reply.startswith(b"received 1 block, 1 byte, sha256 ")
    reply = format_summary(Tally.of([b"ab", b"cd"]).summary())
    assert reply.startswith(b"received 2 blocks, 4 bytes, sha256 ")
    assert parse_summary(reply) == Summary(4, hashlib.sha256(b"abcd").hexdigest(), 2)


def test_an_error_reply_becomes_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="the server refused: block too big"):
        parse_summary(format_error("block too big"))


def test_error_text_is_flattened_to_one_line() -> None:
    reply = format_error("two\r\nlines and é")
    assert reply.count(b"\n") == 1 and b"\r" not in reply
    with pytest.raises(RemoteProtocolError, match="two lines and"):
        parse_summary(reply)


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"received 5 bytes",
        b"received -5 bytes, sha256 " + b"0" * 64,
        b"received 05 bytes, sha256 " + b"0" * 64,
        b"received 5 bytes, sha256 " + b"0" * 63,
        b"received 5 bytes, sha256 " + b"0" * 64 + b"\n\n",
        b"\xff\xfe",
        b"error: ",
        b"x" * (MAX_SUMMARY + 1),
    ],
)
def test_garbage_replies_are_refused(reply: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_summary(reply)


@given(summaries)
def test_round_trip(summary: Summary) -> None:
    assert parse_summary(format_summary(summary)) == summary


@given(st.text(min_size=1, max_size=400))
def test_any_error_text_round_trips_as_a_refusal(reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match="the server refused"):
        parse_summary(format_error(reason))


@given(st.binary(max_size=600))
def test_any_bytes_give_a_summary_or_a_remote_protocol_error(reply: bytes) -> None:
    try:
        summary = parse_summary(reply)
    except RemoteProtocolError:
        return
    assert len(summary.sha256) == 64 and summary.size >= 0


@given(st.lists(st.binary(max_size=50), max_size=10))
def test_tally_matches_hashlib(payloads: list[bytes]) -> None:
    summary = Tally.of(payloads).summary()
    assert summary.blocks == len(payloads)
    assert summary.size == sum(map(len, payloads))
    assert summary.sha256 == hashlib.sha256(b"".join(payloads)).hexdigest()
