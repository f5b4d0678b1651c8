"""Chapter 5 data lessons: numbers on the wire and byte order (F22).

A 32-bit integer is four bytes, but which comes first is a choice. Little-endian machines
(x86, most ARM) put the least significant byte first; network protocols put the most
significant first ("network byte order", big-endian, RFC 1700). ``struct`` makes the choice
explicit: ``<`` little, ``>`` big, ``!`` network (= big), ``=`` native. The blocks protocol
of this chapter announces each block's length with ``!I``: four bytes, big-endian, unsigned.

Read with the wrong byte order, the same four bytes are a different number; nothing in the
bytes says which order was meant. That is why a protocol must say.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

__all__ = ["DEFAULT_NUMBER", "FORMATS", "Packed", "PackingLesson", "pack_lesson"]

#: The book's number.
DEFAULT_NUMBER = 4253

#: Formats of the lesson and what each means.
FORMATS: tuple[tuple[str, str], ...] = (
    ("<i", "little-endian, signed 32-bit"),
    (">i", "big-endian, signed 32-bit"),
    ("!I", "network order, unsigned 32-bit (the blocks length prefix)"),
    ("=i", f"native ({sys.byteorder}-endian here), signed 32-bit"),
    ("!H", "network order, unsigned 16-bit (a port number)"),
    ("!Q", "network order, unsigned 64-bit"),
)


@dataclass(frozen=True)
class Packed:
    """One format applied to the number: the bytes, or why it does not fit."""

    format: str
    meaning: str
    data: bytes | None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form (bytes as hex)."""
        return {
            "format": self.format,
            "meaning": self.meaning,
            "hex": None if self.data is None else self.data.hex(" "),
            "error": self.error,
        }


@dataclass(frozen=True)
class PackingLesson:
    """The number in every format, and what its big-endian bytes mean when read backwards.

    Attributes:
        number: the number packed.
        packed: one entry per format of :data:`FORMATS`.
        misread: the big-endian ``>i`` bytes unpacked as little-endian ``<i`` (``None`` when
            the number does not fit in 32 signed bits).
    """

    number: int
    packed: tuple[Packed, ...]
    misread: int | None

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "number": self.number,
            "native_byteorder": sys.byteorder,
            "packed": [p.to_json() for p in self.packed],
            "misread_big_as_little": self.misread,
        }


def _range(fmt: str) -> tuple[int, int]:
    """The smallest and largest integer an integer format holds (``"!I"`` -> 0, 2**32 - 1)."""
    bits = struct.calcsize(fmt) * 8
    if fmt[-1].isupper():  # I, H, Q, L, B: unsigned
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _pack(fmt: str, meaning: str, number: int) -> Packed:
    low, high = _range(fmt)
    if number < 0 and low == 0:
        why = (
            f"does not fit: {number} is negative, and the unsigned format {fmt[-1]} has no "
            f"sign bit: its {struct.calcsize(fmt)} bytes hold 0 to {high}"
        )
        return Packed(fmt, meaning, None, why)
    if not low <= number <= high:
        why = f"does not fit: {struct.calcsize(fmt)} bytes hold {low} to {high}"
        return Packed(fmt, meaning, None, why)
    return Packed(fmt, meaning, struct.pack(fmt, number))


def pack_lesson(number: int = DEFAULT_NUMBER) -> PackingLesson:
    """Pack ``number`` with each format of :data:`FORMATS` and misread the big-endian bytes."""
    packed = tuple(_pack(fmt, meaning, number) for fmt, meaning in FORMATS)
    big = packed[1].data
    misread = struct.unpack("<i", big)[0] if big is not None else None
    return PackingLesson(number, packed, misread)
