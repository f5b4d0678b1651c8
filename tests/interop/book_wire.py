"""The transcript every book-like peer of chapters 2, 3 and 5 writes (test-only).

A peer started with ``BOOK_TRANSCRIPT=FILE`` in its environment appends one JSON line per
event to FILE: what it sent and received (``send``/``recv``, bytes as hex, with the peer's
address for UDP), and what it did to the connection (``accept``, ``shutdown_wr``,
``shutdown_rd``, ``eof``, ``close``). Tests read it back with :func:`read_transcript`.

Two more test-only knobs, the only ways the peers differ from the book's programs:
``BOOK_PORT`` replaces the port the book hard-codes (1060) in ``udp_local.py``,
``streamer.py`` and ``blocks.py``, and ``BOOK_SEED`` seeds the random drops of
``udp_remote.py``'s server so that a test sees the same drops every run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["Event", "book_port", "log", "read_transcript"]


def book_port(default: int = 1060) -> int:
    """The port a book script hard-codes, unless the test gives another."""
    return int(os.environ.get("BOOK_PORT", default))


_OUT: list[TextIO] = []


def log(kind: str, data: bytes = b"", peer: object = None) -> None:
    """Append one event to the transcript file (if the test asked for one).

    The file stays open, line-buffered: each event is on disk when ``log`` returns, even if
    the peer is killed next.
    """
    path = os.environ.get("BOOK_TRANSCRIPT")
    if not path:
        return
    if not _OUT:
        _OUT.append(open(path, "a", encoding="ascii", buffering=1))  # noqa: SIM115
    line = {"kind": kind, "hex": data.hex(), "peer": None if peer is None else list(peer)}
    _OUT[0].write(json.dumps(line) + "\n")


@dataclass(frozen=True)
class Event:
    """One line of a transcript."""

    kind: str
    data: bytes
    peer: tuple[str, int] | None


def read_transcript(path: Path) -> list[Event]:
    """Every event of a transcript file, in order (an empty list if nothing was written)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="ascii").splitlines():
        row = json.loads(line)
        peer = None if row["peer"] is None else (str(row["peer"][0]), int(row["peer"][1]))
        events.append(Event(row["kind"], bytes.fromhex(row["hex"]), peer))
    return events


def joined(events: list[Event], kind: str) -> bytes:
    """Every byte of one kind (``send`` or ``recv``), joined in order."""
    return b"".join(e.data for e in events if e.kind == kind)


def kinds(events: list[Event]) -> list[str]:
    """The kinds of the events, in order, with runs of ``send``/``recv`` folded into one."""
    out: list[str] = []
    for e in events:
        if not (out and out[-1] == e.kind and e.kind in ("send", "recv")):
            out.append(e.kind)
    return out
