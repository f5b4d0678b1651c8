"""Chapter 5: pickle frames itself, and why it never crosses the wire here (F22).

A pickle ends with the ``STOP`` opcode (``.``), so a reader knows where one object ends
without any length prefix or delimiter: ``pickle.load`` on a stream of several pickles reads
exactly one and leaves the file positioned at the next. :func:`self_delimiting` shows it by
running it: three pickles back to back, then trailing bytes, read one ``load`` at a time.

But a pickle is a small program for a stack machine: its ``GLOBAL``/``STACK_GLOBAL`` and
``REDUCE`` opcodes name any importable callable and call it while loading. Whoever wrote the
bytes chooses what runs, so loading a pickle from a peer hands that peer your process
(the ``pickle`` module's documentation says so in a red box). :func:`code_on_load` shows it
with a harmless callable (``builtins.len``), on bytes we build ourselves; wirelab's protocols
use JSON, text or ``struct`` fields instead, never pickle.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from dataclasses import dataclass
from typing import Any

__all__ = ["CodeOnLoad", "Frame", "code_on_load", "self_delimiting"]

#: The objects of the framing demo: a list, a dict and a string, as a peer might send.
DEMO_OBJECTS: tuple[Any, ...] = ([1, 2, 3], {"zen": "Beautiful is better than ugly."}, "end")
#: Bytes after the last pickle: ``load`` never looks at them.
TRAILER = b"and then some"


@dataclass(frozen=True)
class Frame:
    """One ``pickle.load`` on the stream: where it started, how much it read, what it got."""

    offset: int
    size: int
    last_byte: bytes
    value: Any

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "offset": self.offset,
            "size": self.size,
            "last_byte": self.last_byte.decode("latin-1"),
            "value": repr(self.value),
        }


def self_delimiting(objects: tuple[Any, ...] = DEMO_OBJECTS) -> tuple[bytes, list[Frame], int]:
    """Pickle ``objects`` back to back, add :data:`TRAILER`, and read them one load at a time.

    Returns the stream, one :class:`Frame` per load, and the offset where the trailer begins
    (where the last load stopped).
    """
    stream = b"".join(pickle.dumps(obj, protocol=3) for obj in objects) + TRAILER
    source = io.BytesIO(stream)
    frames = []
    for _ in objects:
        start = source.tell()
        value = pickle.load(source)  # noqa: S301 - our own bytes, built above: never a peer's
        end = source.tell()
        frames.append(Frame(start, end - start, stream[end - 1 : end], value))
    return stream, frames, source.tell()


@dataclass(frozen=True)
class CodeOnLoad:
    """A pickle whose loading calls a function its author chose.

    Attributes:
        data: the pickle's bytes.
        opcodes: the opcodes, as ``pickletools`` names them.
        called: the callable the bytes name.
        result: what ``pickle.loads`` returned: the function's result, not data.
    """

    data: bytes
    opcodes: tuple[str, ...]
    called: str
    result: Any

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "hex": self.data.hex(" "),
            "opcodes": list(self.opcodes),
            "called": self.called,
            "result": repr(self.result),
        }


class _CallsLen:
    """Pickles as "call builtins.len('Beautiful')": what a hostile peer does with os.system."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (len, ("Beautiful",))


def code_on_load() -> CodeOnLoad:
    """Build a pickle that calls ``builtins.len`` when loaded, and load it (harmless)."""
    data = pickle.dumps(_CallsLen(), protocol=3)
    opcodes = tuple(op.name for op, _, _ in pickletools.genops(data))
    result = pickle.loads(data)  # noqa: S301 - our own harmless bytes: the lesson itself
    return CodeOnLoad(data, opcodes, "builtins.len('Beautiful')", result)
