"""The sans-I/O framers: Hypothesis properties (round trip, any split, fuzz) and examples."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.errors import ConfigError, LocalProtocolError, ProtocolError, RemoteProtocolError
from wirelab.net.framing import (
    END,
    HEADER,
    NEED_DATA,
    Framer,
    LengthPrefixFramer,
)

PROPERTIES = settings(max_examples=200, deadline=None)


def drain(framer: Framer, bound: int) -> list[bytes]:
    """Every message the framer can give now; check the memory bound once it needs data."""
    found: list[bytes] = []
    while True:
        event = framer.next_message()
        if event is NEED_DATA:
            assert framer.buffered <= bound
            return found
        assert event is not END, "END before end of file"
        found.append(event)


def feed(framer: Framer, chunks: list[bytes], bound: int) -> list[bytes]:
    """Feed the chunks, then end of file; return the messages; require a clean END."""
    found: list[bytes] = []
    for chunk in chunks:
        framer.receive_data(chunk)
        found += drain(framer, bound)
    framer.receive_data(b"")
    while (event := framer.next_message()) is not END:
        assert event is not NEED_DATA, "NEED_DATA after end of file"
        found.append(event)
    assert framer.next_message() is END  # END is sticky
    assert framer.buffered == 0
    return found


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *cuts})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def length_framer(max_size: int) -> tuple[LengthPrefixFramer, int]:
    return LengthPrefixFramer(max_size=max_size), max_size + HEADER.size


# --- properties: LengthPrefixFramer ------------------------------------------------------


@PROPERTIES
@given(st.lists(st.binary(max_size=60), max_size=12), st.data())
def test_length_round_trip_any_split(messages: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(LengthPrefixFramer(max_size=60).frame(m) for m in messages)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=20), label="cuts")
    for chunks in (split(wire, []), bytewise(wire), split(wire, cuts)):
        framer, bound = length_framer(60)
        assert feed(framer, chunks, bound) == messages


def parse_lengths(stream: bytes, max_size: int) -> list[bytes] | None:
    """A plain oracle for the length-prefix format: messages, or None if the stream is bad."""
    found, at = [], 0
    while at < len(stream):
        if len(stream) - at < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(stream, at)
        at += HEADER.size
        if size > max_size or len(stream) - at < size:
            return None
        found.append(stream[at : at + size])
        at += size
    return found


# Small lengths are likelier than 4-byte noise would make them: mix framed and raw pieces.
_piece = st.one_of(
    st.binary(max_size=20).map(lambda b: HEADER.pack(len(b)) + b),
    st.binary(max_size=6),
    st.integers(0, 2**32 - 1).map(HEADER.pack),
)


@PROPERTIES
@given(st.integers(0, 16), st.lists(_piece, max_size=10).map(b"".join), st.data())
def test_length_arbitrary_bytes_give_messages_or_protocol_error(
    max_size: int, stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")
    framer, bound = length_framer(max_size)
    expected = parse_lengths(stream, max_size)
    try:
        messages = feed(framer, split(stream, cuts), bound)
    except ProtocolError as exc:
        assert isinstance(exc, RemoteProtocolError)
        assert expected is None
        assert framer.buffered == 0
        return
    assert messages == expected


# --- examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("announced", [11, 2**31, 2**32 - 1])
def test_over_limit_announcement_fails_before_the_payload(announced: int) -> None:
    framer = LengthPrefixFramer(max_size=10)
    framer.receive_data(HEADER.pack(announced)[:3])
    assert framer.next_message() is NEED_DATA
    framer.receive_data(HEADER.pack(announced)[3:])
    with pytest.raises(RemoteProtocolError, match=f"{announced} bytes; the limit is 10"):
        framer.next_message()
    assert framer.buffered == 0


@pytest.mark.parametrize(
    ("framer", "partial"),
    [
        (LengthPrefixFramer(), b"\x00\x00"),  # half a header
        (LengthPrefixFramer(), HEADER.pack(10) + b"abc"),  # part of a payload
        (LengthPrefixFramer(), HEADER.pack(10)),  # a header and nothing after it
    ],
)
def test_eof_mid_message(framer: Framer, partial: bytes) -> None:
    framer.receive_data(partial)
    assert framer.next_message() is NEED_DATA
    framer.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="peer closed mid-message"):
        framer.next_message()


def test_data_after_eof_is_a_local_error() -> None:
    framer = LengthPrefixFramer()
    framer.receive_data(b"")
    framer.receive_data(b"")  # a second EOF is harmless
    assert framer.next_message() is END
    with pytest.raises(LocalProtocolError, match="after end of file"):
        framer.receive_data(b"x")


def test_zero_length_messages_are_messages() -> None:
    framer = LengthPrefixFramer()
    framer.receive_data(framer.frame(b"block") + framer.frame(b""))
    assert framer.next_message() == b"block"
    assert framer.next_message() == b""
    assert framer.next_message() is NEED_DATA


def test_frame_refuses_messages_over_max_size() -> None:
    framer = LengthPrefixFramer(max_size=4)
    assert framer.next_message() is NEED_DATA
    framer.frame(b"1234")
    with pytest.raises(LocalProtocolError, match="over the limit of 4"):
        framer.frame(b"12345")


def test_frame_formats() -> None:
    assert LengthPrefixFramer().frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert repr(NEED_DATA) == "NEED_DATA" and repr(END) == "END"


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError):
        LengthPrefixFramer(max_size=-1)
    with pytest.raises(ConfigError):
        LengthPrefixFramer(max_size=2**32)


def _feed_bytewise(size: int) -> float:
    framer = LengthPrefixFramer(max_size=size)
    began = time.perf_counter()
    framer.receive_data(HEADER.pack(size))
    for _ in range(size - 1):
        framer.receive_data(b"x")
        assert framer.next_message() is NEED_DATA
    framer.receive_data(b"x")
    assert framer.next_message() == b"x" * size
    return time.perf_counter() - began


def test_byte_at_a_time_is_linear_not_quadratic() -> None:
    # Copying the whole buffer on every byte makes 10x the input cost ~100x the time;
    # appending and compacting only consumed bytes keeps it near 10x. Best of three runs each, taken
    # in turn, so that a busy machine slows both sizes alike.
    small, large = [], []
    for _ in range(3):
        small.append(_feed_bytewise(10_000))
        large.append(_feed_bytewise(100_000))
    assert min(large) < 40 * min(small), (small, large)


def test_the_core_imports_no_io() -> None:
    code = (
        "import sys, wirelab.net.framing; "
        "print(sorted({'socket', 'asyncio', 'selectors', 'ssl'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
