"""The chapter 3 sans-I/O pieces: rounding, the chunk stream, the echo checker, byte counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from wirelab.tcp._core import CHUNK, UPPER_CHUNK, EchoChecker, parse_bytecount, pattern, round_up


def test_the_books_messages_are_sixteen_bytes() -> None:
    assert CHUNK == b"capitalize this!" and UPPER_CHUNK == b"CAPITALIZE THIS!"


@pytest.mark.parametrize(("count", "rounded"), [(0, 0), (1, 16), (16, 16), (17, 32), (1000, 1008)])
def test_round_up(count: int, rounded: int) -> None:
    assert round_up(count) == rounded


def test_negative_count_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        round_up(-1)


@given(st.integers(0, 10_000), st.integers(0, 200))
def test_pattern_is_a_window_on_the_endless_stream(offset: int, size: int) -> None:
    stream = CHUNK * ((offset + size) // 16 + 2)
    assert pattern(offset, size) == stream[offset : offset + size]


@given(st.integers(0, 64).map(lambda n: n * 16), st.data())
def test_checker_accepts_any_split_of_a_correct_echo(total: int, data: st.DataObject) -> None:
    echo = UPPER_CHUNK * (total // 16)
    cuts = sorted(data.draw(st.lists(st.integers(0, total), max_size=8)))
    checker = EchoChecker(total)
    for start, end in zip([0, *cuts], [*cuts, total], strict=True):
        checker.feed(echo[start:end])
    assert checker.complete and checker.received == total


@given(st.integers(1, 40).map(lambda n: n * 16), st.data())
def test_checker_names_the_first_wrong_byte(total: int, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, total - 1))
    echo = bytearray(UPPER_CHUNK * (total // 16))
    echo[at] = echo[at] ^ 0x20  # flip the case bit (or turn a space into NUL)
    checker = EchoChecker(total)
    with pytest.raises(RemoteProtocolError, match=f"echo byte {at} "):
        checker.feed(bytes(echo))


def test_checker_refuses_an_echo_longer_than_the_request() -> None:
    checker = EchoChecker(16)
    with pytest.raises(RemoteProtocolError, match="more than the 16 bytes"):
        checker.feed(UPPER_CHUNK + b"C")


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1000", 1000),
        ("64K", 65536),
        ("4M", 4 << 20),
        ("4MiB", 4 << 20),
        ("1g", 1 << 30),
        ("7b", 7),
    ],
)
def test_parse_bytecount(text: str, count: int) -> None:
    assert parse_bytecount(text) == count


@pytest.mark.parametrize("text", ["", "-5", "4X", "M", "1.5M", "٣", "4i", "4KK"])
def test_parse_bytecount_refuses_garbage(text: str) -> None:
    with pytest.raises(ConfigError, match="not a byte count"):
        parse_bytecount(text)


@given(st.text(max_size=12))
def test_parse_bytecount_gives_a_count_or_a_config_error(text: str) -> None:
    try:
        count = parse_bytecount(text)
    except ConfigError:
        return
    assert count >= 0
