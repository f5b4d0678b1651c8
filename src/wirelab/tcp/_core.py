"""The chapter 3 exchanges over TCP (RFC 9293), sans-I/O: fixed messages and the upper echo.

Two tiny protocols, the book's:

* the *sixteen* exchange: the client sends exactly 16 bytes (``Hi there, server``), the
  server answers exactly 16 (``Farewell, client``) and closes;
* the *upper* echo: whatever the client sends comes back upper-cased, byte for byte. The
  deadlock lesson streams the 16-byte chunk ``capitalize this!`` over and over, so a client
  can check every byte of the echo against :data:`UPPER_CHUNK` without keeping what it sent.

Nothing here touches a socket; the servers and clients around it do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "CHUNK",
    "MESSAGE_SIZE",
    "REPLY",
    "REQUEST",
    "UPPER_CHUNK",
    "EchoChecker",
    "parse_bytecount",
    "pattern",
    "round_up",
]

#: Both messages of the sixteen exchange are exactly this long.
MESSAGE_SIZE = 16
#: What the client says.
REQUEST = b"Hi there, server"
#: What the server answers.
REPLY = b"Farewell, client"
#: The chunk the deadlock client repeats (the book's), and what each one must come back as.
CHUNK = b"capitalize this!"
UPPER_CHUNK = CHUNK.upper()

assert len(REQUEST) == len(REPLY) == len(CHUNK) == MESSAGE_SIZE


def round_up(bytecount: int) -> int:
    """Round ``bytecount`` up to a whole number of 16-byte chunks (0 stays 0).

    Raises:
        LocalProtocolError: the count is negative.
    """
    if bytecount < 0:
        raise LocalProtocolError(f"a byte count cannot be negative ({bytecount})")
    return -(-bytecount // MESSAGE_SIZE) * MESSAGE_SIZE


def pattern(offset: int, size: int, chunk: bytes = CHUNK) -> bytes:
    """The ``size`` bytes of the endless stream ``chunk chunk chunk ...`` from ``offset``."""
    if size <= 0:
        return b""
    start = offset % len(chunk)
    repeats = (start + size) // len(chunk) + 1
    return (chunk * repeats)[start : start + size]


@dataclass
class EchoChecker:
    """Checks an upper-cased echo of the chunk stream as it arrives, in any pieces.

    Attributes:
        expected: how many bytes the echo must have in all.
        received: how many arrived so far (all of them correct).
    """

    expected: int
    received: int = 0

    def feed(self, data: bytes) -> None:
        """Check the next piece of the echo.

        Raises:
            RemoteProtocolError: a byte differs from the upper-cased chunk, or the echo is
                longer than what was sent.
        """
        if self.received + len(data) > self.expected:
            raise RemoteProtocolError(
                f"the server echoed more than the {self.expected} bytes we sent"
            )
        want = pattern(self.received, len(data), UPPER_CHUNK)
        if data != want:
            bad = next(i for i, (a, b) in enumerate(zip(data, want, strict=True)) if a != b)
            at = self.received + bad
            raise RemoteProtocolError(
                f"echo byte {at} is {data[bad : bad + 1]!r}, expected {want[bad : bad + 1]!r}"
            )
        self.received += len(data)

    @property
    def complete(self) -> bool:
        """True once every byte sent has come back, checked."""
        return self.received == self.expected


_BYTECOUNT = re.compile(r"([0-9]{1,12})([KMG]?)(?:I?B)?", re.ASCII)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_bytecount(text: str) -> int:
    """``"1000"`` -> 1000, ``"64K"`` -> 65536, ``"4M"`` -> 4194304 (binary units, ``i``/``B`` ok).

    Raises:
        ConfigError: not a non-negative whole number with an optional K, M or G.
    """
    match = _BYTECOUNT.fullmatch(text.strip().upper())
    if match is None:
        raise ConfigError(f"{text!r} is not a byte count (e.g. 1000, 64K, 4M)")
    return int(match.group(1)) * _UNITS[match.group(2)]
