"""The chapter 2 request/reply core: tags, replies, and any bytes in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import LocalProtocolError
from wirelab.net.limits import MAX_UDP_PAYLOAD
from wirelab.udp._core import MAX_REQUEST_ID, encode_request, parse_reply, parse_request, reply_for


def test_untagged_request_gets_the_books_reply() -> None:
    assert reply_for(b"The time is now") == b"Your data was 15 bytes long"


def test_tagged_request_gets_its_tag_back() -> None:
    datagram = encode_request(42, b"hello")
    assert datagram == b"#42 hello"
    reply = reply_for(datagram)
    assert reply == b"#42 Your data was 5 bytes long"
    assert parse_reply(reply, 42) == "Your data was 5 bytes long"
    assert parse_reply(reply, 41) is None  # a reply to another request is not ours
    assert parse_reply(reply, None) is None


def test_oversized_request_is_refused_before_sending() -> None:
    with pytest.raises(LocalProtocolError, match="at most 65507 bytes"):
        encode_request(None, b"x" * (MAX_UDP_PAYLOAD + 1))
    with pytest.raises(LocalProtocolError):
        encode_request(0, b"x")


@given(st.integers(1, MAX_REQUEST_ID), st.binary(max_size=200))
def test_round_trip(request_id: int, payload: bytes) -> None:
    parsed = parse_request(encode_request(request_id, payload))
    assert (parsed.request_id, parsed.payload) == (request_id, payload)
    assert parse_reply(reply_for(encode_request(request_id, payload)), request_id) == (
        f"Your data was {len(payload)} bytes long"
    )


@given(st.binary(max_size=300))
def test_any_bytes_get_an_answer(datagram: bytes) -> None:
    reply = reply_for(datagram)
    assert reply.endswith(b"bytes long")
    assert len(reply) < 64
