"""The chapter 5 framing lessons' replies (application layer over TCP, RFC 9293), sans-I/O.

Both servers of the chapter answer a finished stream with one summary a client can check:

* framing by end-of-file (``stream``): the reply is one line,
  ``received 93 bytes, sha256 <64 hex digits>``;
* length-prefixed blocks (``blocks``): the reply is one block,
  ``received 3 blocks, 93 bytes, sha256 <64 hex digits>`` (the digest covers the payloads,
  joined in order).

A server that refuses a stream says ``error: <why>`` instead. :class:`Tally` counts what
arrives; :func:`format_summary` and :func:`parse_summary` are the two directions of the reply.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wirelab.errors import RemoteProtocolError

__all__ = [
    "MAX_SUMMARY",
    "Summary",
    "Tally",
    "format_error",
    "format_summary",
    "parse_summary",
]

#: The longest reply a client reads: a summary is under 120 bytes, an error under 300.
MAX_SUMMARY = 512

_SUMMARY = re.compile(
    r"received (?:(?P<blocks>0|[1-9][0-9]{0,18}) blocks?, )?"
    r"(?P<bytes>0|[1-9][0-9]{0,18}) bytes?, sha256 (?P<sha256>[0-9a-f]{64})\n?"
)
_ERROR = re.compile(r"error: (?P<reason>[^\r\n]{1,300})\n?")


@dataclass(frozen=True)
class Summary:
    """What a server says it received.

    Attributes:
        size: payload bytes in all.
        sha256: hex digest of the payload bytes, joined in order.
        blocks: how many blocks (``None`` for a stream framed by end-of-file).
    """

    size: int
    sha256: str
    blocks: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {"blocks": self.blocks, "bytes": self.size, "sha256": self.sha256}


@dataclass
class Tally:
    """Counts payloads as they arrive (bytes, blocks, and a running SHA-256)."""

    size: int = 0
    blocks: int = 0
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    def add(self, payload: bytes, *, block: bool = True) -> None:
        """Count ``payload``: one more block (unless ``block=False``) and its bytes."""
        self.size += len(payload)
        self.blocks += 1 if block else 0
        self._hash.update(payload)

    def summary(self, *, blocks: bool = True) -> Summary:
        """What has arrived so far (``blocks=False`` for a stream without blocks)."""
        return Summary(self.size, self._hash.hexdigest(), self.blocks if blocks else None)

    @classmethod
    def of(cls, payloads: Iterable[bytes]) -> Tally:
        """The tally a server should report for ``payloads``, sent as blocks."""
        tally = cls()
        for payload in payloads:
            tally.add(payload)
        return tally


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_summary(summary: Summary) -> bytes:
    """The reply for ``summary`` (a line ending in ``\\n`` when it has no block count)."""
    head = "" if summary.blocks is None else _plural(summary.blocks, "block") + ", "
    text = f"received {head}{_plural(summary.size, 'byte')}, sha256 {summary.sha256}"
    return (text if summary.blocks is not None else text + "\n").encode("ascii")


def format_error(reason: str) -> bytes:
    """The reply refusing a stream: ``error: <reason>`` (one line, at most 300 characters)."""
    flat = " ".join(reason.split())[:300] or "refused"
    return f"error: {flat}\n".encode("ascii", errors="replace")


def parse_summary(reply: bytes) -> Summary:
    """Read a server's reply.

    Raises:
        RemoteProtocolError: the server refused (the message says why), or the reply is not
            a summary at all.
    """
    if len(reply) > MAX_SUMMARY:
        raise RemoteProtocolError(f"the server's reply is over {MAX_SUMMARY} bytes")
    try:
        text = reply.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"the server's reply is not ASCII: {reply[:60]!r}") from None
    refused = _ERROR.fullmatch(text)
    if refused is not None:
        raise RemoteProtocolError(f"the server refused: {refused.group('reason')}")
    match = _SUMMARY.fullmatch(text)
    if match is None:
        raise RemoteProtocolError(f"the server's reply is not a summary: {text[:80]!r}")
    blocks = match.group("blocks")
    return Summary(
        size=int(match.group("bytes")),
        sha256=match.group("sha256"),
        blocks=None if blocks is None else int(blocks),
    )
