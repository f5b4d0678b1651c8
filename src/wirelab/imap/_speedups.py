"""Faster equivalents of three pymap methods, installed once at server start (decision 0143).

:func:`speed_up_pymap` replaces ``BytesFormat.__mod__`` (every response piece is formatted
through it), ``SynchronizedMessages.get_all`` (every FETCH, STORE and SEARCH asks it for its
messages) and ``Params.copy`` (the parser copies its parameters about five times a command)
with versions that give the same results with less work. This module owns only these
replacements; the cached folder view is :mod:`wirelab.imap._folder`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymap.parsing import Params
from pymap.parsing.state import ParsingState

__all__ = ["speed_up_pymap"]


def _format_mod(self: Any, other: Any) -> bytes:
    kind = type(other)
    if kind is bytes or hasattr(kind, "__index__") or hasattr(kind, "__bytes__"):
        return self.format([other])  # type: ignore[no-any-return]
    if isinstance(other, Iterable):
        return self.format(other)  # type: ignore[no-any-return]
    raise NotImplementedError()


def _get_all(self: Any, seq_set: Any) -> list[tuple[int, Any]]:
    """``SynchronizedMessages.get_all`` in time of the set asked for, not of the folder.

    pymap walks every UID of the folder for each command (a one-message FETCH in a folder
    of 1000 walked 1000); the sequence numbers it needs are already in its ``_seqs_cache``
    (UID -> number, kept whole by its ``_update`` and ``_remove``) and ``_sorted``.
    """
    cache = self._cache
    if seq_set.uid:
        wanted = seq_set.flatten(self.max_uid) & self._uids
        seqs = self._seqs_cache
        return sorted((seqs[uid], cache[uid]) for uid in wanted)
    ordered = self._sorted
    count = len(ordered)
    numbers = sorted(n for n in seq_set.flatten(count) if 1 <= n <= count)
    return [(n, cache[ordered[n - 1]]) for n in numbers]


def _params_copy(
    self: Any,
    state: Any = None,
    *,
    expected: Any = None,
    list_limit: int | None = None,
    command_name: bytes | None = None,
    uid: bool | None = None,
    charset: str | None = None,
    tag: bytes | None = None,
    max_append_len: int | None = None,
    allow_continuations: bool | None = None,
) -> Any:
    """``pymap.parsing.Params.copy`` without a helper call and a dict per attribute (the
    parser copies its parameters about five times a command); same values, same defaults."""
    new = Params.__new__(Params)
    new.state = (self.state if state is None else state) or ParsingState()
    new.expected = (self.expected if expected is None else expected) or []
    new.list_limit = self.list_limit if list_limit is None else list_limit
    new.command_name = self.command_name if command_name is None else command_name
    new.uid = self.uid if uid is None else uid
    new.charset = self.charset if charset is None else charset
    new.tag = (self.tag if tag is None else tag) or b"*"
    new.max_append_len = self.max_append_len if max_append_len is None else max_append_len
    new.allow_continuations = (
        self.allow_continuations if allow_continuations is None else allow_continuations
    )
    return new


def speed_up_pymap() -> None:
    """Make ``pymap.bytes.BytesFormat.__mod__`` ask its questions without Protocol checks.

    pymap formats every response piece with ``BytesFormat % value``, which first asks
    ``isinstance(value, SupportsIndex)`` and ``isinstance(value, SupportsBytes)``: on
    runtime-checkable Protocols each walks the protocol's attributes, about 15 % of the
    server's CPU on a one-message FETCH. The replacement asks the same questions (a type
    with ``__index__``; bytes or a type with ``__bytes__``; else an iterable) directly.
    """
    from pymap.bytes import BytesFormat
    from pymap.selected import SynchronizedMessages

    BytesFormat.__mod__ = _format_mod  # type: ignore[method-assign]
    SynchronizedMessages.get_all = _get_all  # type: ignore[method-assign]
    Params.copy = _params_copy  # type: ignore[method-assign]
