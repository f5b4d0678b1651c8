"""The chapter 5 data lessons: encodings and error handlers, struct and byte order."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wirelab.data.encodings import (
    CODECS,
    DEFAULT_BYTES,
    Outcome,
    decode_everywhere,
    encode_everywhere,
    try_decode,
    try_encode,
)
from wirelab.data.packing import FORMATS, pack_lesson


def by_codec(outcomes: list[Outcome]) -> dict[tuple[str, str], Any]:
    return {(o.codec, o.handler): o for o in outcomes}


def test_the_book_word_in_every_codec() -> None:
    got = by_codec(encode_everywhere("Namárië!"))
    assert got["latin-1", "strict"].data == b"Nam\xe1ri\xeb!"
    assert got["iso-8859-2", "strict"].data == b"Nam\xe1ri\xeb!"  # same bytes here
    assert got["utf-8", "strict"].data == b"Nam\xc3\xa1ri\xc3\xab!"  # two bytes per accent
    assert got["utf-16", "strict"].data[:2] in (b"\xff\xfe", b"\xfe\xff")  # the BOM
    assert len(got["utf-16", "strict"].data) == 2 + 2 * 8
    assert len(got["utf-32", "strict"].data) == 4 + 4 * 8
    assert got["utf-16-be", "strict"].data[:2] == b"\x00N"  # no BOM, big-endian
    assert got["cp500", "strict"].data[0] == 0xD5  # EBCDIC 'N'
    for codec in ("ascii", "greek", "hebrew"):
        assert "cannot encode 'á' at position 3" in got[codec, "strict"].error
    assert len(got) == len(CODECS)


def test_one_byte_four_meanings() -> None:
    got = by_codec(decode_everywhere(DEFAULT_BYTES))
    assert got["latin-1", "strict"].text == "ghiçjkl"
    assert got["iso-8859-2", "strict"].text == "ghiçjkl"
    assert got["greek", "strict"].text == "ghiηjkl"
    assert got["hebrew", "strict"].text == "ghiחjkl"
    assert got["cp500", "strict"].text == DEFAULT_BYTES.decode("cp500")
    assert "cannot decode byte e7 at position 3" in got["ascii", "strict"].error
    assert got["ascii", "replace"].text == "ghi\ufffdjkl"
    assert got["ascii", "ignore"].text == "ghijkl"  # silently one character shorter


def test_encoding_error_handlers() -> None:
    assert try_encode("Namárië!", "ascii", "replace").data == b"Nam?ri?!"
    assert try_encode("Namárië!", "ascii", "ignore").data == b"Namri!"
    assert try_encode("Namárië!", "ascii").error is not None


@given(st.text(max_size=40))
def test_utf8_and_utf16_and_utf32_round_trip_anything(text: str) -> None:
    for codec in ("utf-8", "utf-16", "utf-32"):
        encoded = try_encode(text, codec)
        if encoded.data is None:  # lone surrogates cannot be encoded at all
            assert "surrogates not allowed" in (encoded.error or "")
            continue
        assert try_decode(encoded.data, codec).text == text


@given(st.binary(max_size=40))
def test_decoding_never_raises(data: bytes) -> None:
    for outcome in decode_everywhere(data):
        assert (outcome.text is None) != (outcome.error is None)


def test_the_books_number() -> None:
    lesson = pack_lesson(4253)
    shown = {p.format: p.data for p in lesson.packed}
    assert shown["<i"] == b"\x9d\x10\x00\x00"
    assert shown[">i"] == b"\x00\x00\x10\x9d"
    assert shown["!I"] == b"\x00\x00\x10\x9d"  # network order is big-endian
    assert shown["!H"] == b"\x10\x9d"
    assert lesson.misread == -1659895808


def test_numbers_that_do_not_fit_are_reported() -> None:
    lesson = pack_lesson(-1)
    shown = {p.format: p for p in lesson.packed}
    assert shown["!I"].data is None and shown["!I"].error
    assert shown["<i"].data == b"\xff\xff\xff\xff"
    assert pack_lesson(2**40).misread is None


@given(st.integers(-(2**31), 2**31 - 1))
def test_big_and_little_are_mirror_images(number: int) -> None:
    lesson = pack_lesson(number)
    little, big = lesson.packed[0].data, lesson.packed[1].data
    assert little is not None and big is not None
    assert little == big[::-1]
    assert struct.unpack(">i", big)[0] == number
    assert len(lesson.packed) == len(FORMATS)
