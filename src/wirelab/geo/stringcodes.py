"""Text and bytes (chapter 1, F06): the network carries bytes, so text is encoded and decoded.

The book's ``stringcodes.py`` decoded UTF-16 bytes with a byte-order mark, then wrote a UTF-8
sentence to ``eagle.txt`` in the current directory. Here nothing is written anywhere: the
functions return what would go on the wire, and the CLI shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INCOMING", "OUTGOING", "Codec", "decode_incoming", "encode_outgoing"]

#: Bytes "received" from a peer: UTF-16 with a byte-order mark (little-endian), as Windows
#: tools often write it.
INCOMING = "Grüße from Archbold, Ohio: 41.52° N".encode("utf-16")

#: A sentence to "send": non-ASCII on purpose, so its UTF-8 form is longer than its text.
OUTGOING = "The Eagle has landed: «Tranquility Base here» ✓"


@dataclass(frozen=True)
class Codec:
    """One conversion between text and bytes, with both sides shown."""

    text: str
    data: bytes
    encoding: str

    @property
    def characters(self) -> int:
        """Length of the text in characters (code points)."""
        return len(self.text)

    @property
    def size(self) -> int:
        """Length of the bytes."""
        return len(self.data)

    def hex(self, limit: int = 64) -> str:
        """The bytes in hex, space-separated, cut after ``limit`` bytes."""
        shown = self.data[:limit].hex(" ")
        return shown + (" ..." if len(self.data) > limit else "")


def decode_incoming(data: bytes = INCOMING, encoding: str = "utf-16") -> Codec:
    """Decode received bytes; the UTF-16 codec reads the byte-order mark to pick the order.

    Raises:
        UnicodeDecodeError: the bytes are not valid in ``encoding`` (strict errors).
    """
    return Codec(data.decode(encoding), data, encoding)


def encode_outgoing(text: str = OUTGOING, encoding: str = "utf-8") -> Codec:
    """Encode text for sending.

    Raises:
        UnicodeEncodeError: ``encoding`` cannot represent some character (strict errors).
    """
    return Codec(text, text.encode(encoding), encoding)
