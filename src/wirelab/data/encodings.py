"""Chapter 5 data lessons: text is characters, the wire carries bytes (F21).

An encoding maps characters to bytes. The same text gives different bytes in different
encodings, some encodings cannot represent it at all, and the same bytes read with the wrong
encoding give different text, or an error. The error handlers decide what happens then:
``strict`` raises, ``replace`` puts a marker (``\\ufffd`` when decoding, ``?`` when
encoding), ``ignore`` silently drops, which loses data without a word.

These functions compute the lessons; ``wirelab data encodings`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CODECS",
    "DEFAULT_BYTES",
    "DEFAULT_TEXT",
    "HANDLERS",
    "Codec",
    "Outcome",
    "decode_everywhere",
    "encode_everywhere",
    "try_decode",
    "try_encode",
]

#: The book's favourite: one word with two accented letters.
DEFAULT_TEXT = "Namárië!"
#: Bytes whose meaning depends on the codec: ``0xE7`` is ç, ç, η or ח, and EBCDIC reads
#: every byte differently.
DEFAULT_BYTES = b"ghi\xe7jkl"
#: The error handlers every codec accepts, in the order the lesson shows them.
HANDLERS = ("strict", "replace", "ignore")


@dataclass(frozen=True)
class Codec:
    """One encoding of the lesson: its Python name and what it is."""

    name: str
    label: str


CODECS: tuple[Codec, ...] = (
    Codec("ascii", "ASCII: 7 bits, English only"),
    Codec("latin-1", "ISO-8859-1, Western Europe"),
    Codec("iso-8859-2", "latin-2, Central Europe"),
    Codec("greek", "ISO-8859-7"),
    Codec("hebrew", "ISO-8859-8"),
    Codec("cp500", "EBCDIC (EBCDIC-CP-BE), IBM mainframes"),
    Codec("utf-16", "UTF-16 with a byte-order mark"),
    Codec("utf-16-be", "UTF-16 big-endian, no BOM"),
    Codec("utf-32", "UTF-32 with a byte-order mark"),
    Codec("utf-8", "UTF-8: ASCII stays ASCII"),
)

#: Codecs that give every byte a meaning, so any bytes decode (the "mystery bytes" table).
SINGLE_BYTE = ("latin-1", "iso-8859-2", "greek", "hebrew", "cp500")


@dataclass(frozen=True)
class Outcome:
    """What one codec (with one error handler) made of the input.

    Attributes:
        codec: the codec's Python name.
        handler: the error handler used.
        text: the decoded text (decoding), else ``None``.
        data: the encoded bytes (encoding), else ``None``.
        error: why it failed (``strict`` only), else ``None``.
    """

    codec: str
    handler: str
    text: str | None = None
    data: bytes | None = None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form (bytes as hex)."""
        return {
            "codec": self.codec,
            "handler": self.handler,
            "text": self.text,
            "hex": None if self.data is None else self.data.hex(" "),
            "length": None if self.data is None else len(self.data),
            "error": self.error,
        }


def _reason(exc: UnicodeError) -> str:
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start : exc.end]
        return f"cannot encode {bad!r} at position {exc.start}: {exc.reason}"
    if isinstance(exc, UnicodeDecodeError):
        bad_bytes = exc.object[exc.start : exc.end]
        return f"cannot decode byte {bad_bytes.hex()} at position {exc.start}: {exc.reason}"
    return str(exc)  # pragma: no cover - codecs raise one of the two above


def try_encode(text: str, codec: str, handler: str = "strict") -> Outcome:
    """Encode ``text``; a failure under ``strict`` is reported, not raised."""
    try:
        return Outcome(codec, handler, data=text.encode(codec, handler))
    except UnicodeError as exc:
        return Outcome(codec, handler, error=_reason(exc))


def try_decode(data: bytes, codec: str, handler: str = "strict") -> Outcome:
    """Decode ``data``; a failure under ``strict`` is reported, not raised."""
    try:
        return Outcome(codec, handler, text=data.decode(codec, handler))
    except UnicodeError as exc:
        return Outcome(codec, handler, error=_reason(exc))


def encode_everywhere(text: str = DEFAULT_TEXT) -> list[Outcome]:
    """``text`` in every codec of the lesson (strict: a codec that cannot says why)."""
    return [try_encode(text, codec.name) for codec in CODECS]


def decode_everywhere(data: bytes = DEFAULT_BYTES) -> list[Outcome]:
    """``data`` read by every single-byte codec, then by ASCII with each error handler."""
    read = [try_decode(data, name) for name in SINGLE_BYTE]
    return read + [try_decode(data, "ascii", handler) for handler in HANDLERS]
