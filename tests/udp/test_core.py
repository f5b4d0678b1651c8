"""The chapter 2 request/reply core: tags, replies, and any bytes in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import LocalProtocolError, RemoteProtocolError
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


def test_oversized_request_is_refused_before_sending() -> None:
    with pytest.raises(LocalProtocolError, match="at most 65507 bytes"):
        encode_request(None, b"x" * (MAX_UDP_PAYLOAD + 1))
    with pytest.raises(LocalProtocolError):
        encode_request(0, b"x")


@pytest.mark.parametrize(
    ("datagram", "reply"),
    [
        (b"This is another message", b"Your data was 23 bytes long"),  # the book's client
        (b"", b"Your data was 0 bytes long"),
        (b"\xff" * 1000, b"Your data was 1000 bytes long"),
        (b"#7 tagged", b"#7 Your data was 6 bytes long"),
        (b"#4294967295 x", b"#4294967295 Your data was 1 bytes long"),
        (b"#4294967296 x", b"Your data was 13 bytes long"),  # not an ID: out of range
        (b"#0 x", b"Your data was 4 bytes long"),  # not an ID: IDs start at 1
        (b"#12x", b"Your data was 4 bytes long"),  # no space: not a tag
    ],
)
def test_replies_byte_for_byte(datagram: bytes, reply: bytes) -> None:
    assert reply_for(datagram) == reply


@given(st.integers(1, MAX_REQUEST_ID), st.binary(max_size=200))
def test_round_trip(request_id: int, payload: bytes) -> None:
    parsed = parse_request(encode_request(request_id, payload))
    assert (parsed.request_id, parsed.payload) == (request_id, payload)
    # The tag comes back (the reply's text is checked byte for byte above).
    reply = reply_for(encode_request(request_id, payload))
    assert parse_request(reply).request_id == request_id
    assert parse_reply(reply, request_id) is not None


def test_plain_client_takes_any_reply_and_tagged_client_says_when_ids_are_not_echoed() -> None:
    assert parse_reply(b"Your data was 23 bytes long", None) == "Your data was 23 bytes long"
    assert parse_reply(b"#9 anything", None) == "#9 anything"
    with pytest.raises(RemoteProtocolError, match="without echoing request ID 5"):
        parse_reply(b"Your data was 23 bytes long", 5)


@given(st.binary(max_size=300))
def test_any_bytes_get_an_answer(datagram: bytes) -> None:
    reply = reply_for(datagram)
    assert reply.endswith(b"bytes long")
    assert len(reply) < 64
