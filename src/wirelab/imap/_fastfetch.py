"""A fast path for the commonest FETCH commands (issue 15, decision 0144).

pymap spends much of a one-message ``UID FETCH`` in generic work: its parser (about a
fifth of the server's CPU) and its response objects with their ``BytesFormat`` rendering
(another fifth; decision 0144 has the profile). For the shapes a mail client sends most,
this module does both parts itself and leaves the *semantics* to pymap:

* **recognise**: :func:`recognise` takes a command line of exactly the form
  ``tag [UID ]FETCH <set> <items>``, where the tag is letters and digits, the set is
  RFC 3501's ``sequence-set`` (numbers of up to 10 digits, ``*``, ranges) and the items
  are one of, or a parenthesized list of, ``BODY.PEEK[]``, ``BODY[]``, ``RFC822``,
  ``RFC822.SIZE``, ``FLAGS``, ``UID`` (upper case, single spaces, CR LF). Anything else
  returns ``None`` and pymap parses the line as before. The set is parsed by pymap's own
  ``SequenceSet.parse``, and the items' fetch attributes come from pymap's own parser
  (once per distinct item list, then cached): the command is the one pymap would build;
* **execute**: :meth:`FastFetchState.do_fetch` calls pymap's own ``fetch_messages`` (which
  sets ``\\Seen`` for ``BODY[]`` and ``RFC822`` in a read-write folder, exactly as before)
  and returns a :class:`FastFetchOk` instead of pymap's response objects; pymap's state
  machine then forks the selected mailbox and adds any untagged updates as always;
* **write**: :meth:`FastFetchOk.write_fast` renders each ``* n FETCH (...)`` line itself:
  the literal with its exact length, numbers, and ``FLAGS`` through pymap's ``List``.
  Whenever the response is anything but plain (an untagged update to merge, such as the
  ``FLAGS`` of a message this FETCH just marked ``\\Seen``; an expunged message; a message
  whose file is gone), :class:`FastFetchOk` turns into exactly pymap's response first.

``tests/imap/test_imap_fast_fetch.py`` checks that the bytes on the wire equal pymap's for
every form, over random folders, flags and sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pymap.fetch import MessageAttributes
from pymap.imap.state import ConnectionState
from pymap.parsing import Params
from pymap.parsing.command.select import FetchCommand
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import List
from pymap.parsing.response import Response, ResponseCode, ResponseOk
from pymap.parsing.response.specials import FetchResponse
from pymap.parsing.specials import FetchAttribute, FetchRequirement, SequenceSet
from pymap.parsing.state import ParsingState
from pymap.selected import SelectedMailbox

from wirelab.imap._messages import LazyLoadedMessage

__all__ = ["FastFetchOk", "FastFetchState", "recognise"]

_ITEM = rb"(?:BODY\.PEEK\[\]|BODY\[\]|RFC822\.SIZE|RFC822|FLAGS|UID)"
_PART = rb"(?:[1-9][0-9]{0,9}|\*)(?::(?:[1-9][0-9]{0,9}|\*))?"
_SET = _PART + rb"(?:," + _PART + rb"){0,255}"
_LINE = re.compile(
    rb"([A-Za-z0-9]{1,64}) (UID FETCH|FETCH) (" + _SET + rb") "
    rb"(" + _ITEM + rb"|\(" + _ITEM + rb"(?: " + _ITEM + rb"){0,7}\))\r\n"
)

# what each attribute is, for the writer: a literal of the message, its size, its UID, FLAGS
_LITERAL, _SIZE, _UID, _FLAGS = range(4)
_KINDS = {b"BODY": _LITERAL, b"BODY.PEEK": _LITERAL, b"RFC822": _LITERAL}
_KINDS.update({b"RFC822.SIZE": _SIZE, b"UID": _UID, b"FLAGS": _FLAGS})


class _Shape:
    """One item list of one command, as pymap parses it: class, attributes, what to write."""

    __slots__ = ["attributes", "cls", "plan", "requirement", "sets_seen"]

    def __init__(self, cls: type[FetchCommand], attributes: Sequence[FetchAttribute]) -> None:
        self.cls = cls
        self.attributes = attributes
        # the response has one value per distinct attribute, in first-seen order (pymap
        # keys them in a dict)
        seen: dict[FetchAttribute, tuple[int, bytes]] = {}
        for attr in attributes:
            seen.setdefault(attr, (_KINDS[attr.value], bytes(attr.for_response)))
        self.plan = list(seen.values())
        self.requirement = FetchRequirement.reduce(attr.requirement for attr in attributes)
        self.sets_seen = any(attr.set_seen for attr in attributes)


_shapes: dict[tuple[bytes, bytes], _Shape | None] = {}
_MAX_SHAPES = 512


def _shape(params: Params, command: bytes, items: bytes) -> _Shape | None:
    key = (command, items)
    try:
        return _shapes[key]
    except KeyError:
        pass
    from pymap.parsing.commands import Commands

    line = memoryview(b"x " + command + b" 1 " + items + b"\r\n")
    cmd, _ = Commands().parse(line, params.copy(ParsingState()))
    shape = None
    if isinstance(cmd, FetchCommand) and all(a.value in _KINDS for a in cmd.attributes):
        shape = _Shape(type(cmd), cmd.attributes)
    if len(_shapes) < _MAX_SHAPES:
        _shapes[key] = shape
    return shape


def recognise(line: bytes | bytearray | memoryview, params: Params) -> FetchCommand | None:
    """The FETCH command of ``line`` if it has one of the fast shapes, else ``None``."""
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    tag, command, seq, items = match.groups()
    shape = _shape(params, command, items)
    if shape is None:
        return None
    uid = command == b"UID FETCH"
    try:
        seq_set, rest = SequenceSet.parse(memoryview(seq), params.copy(uid=uid))
    except NotParseable:
        return None
    if rest:
        return None
    cmd = shape.cls(tag, seq_set, shape.attributes)
    marked: Any = cmd
    marked._wirelab_fast = shape
    return cmd


class FastFetchOk(ResponseOk):
    """``tag OK ... completed.`` after FETCH responses the fast writer renders.

    Until something else is added (an untagged update), it holds the fetched messages; then
    it becomes pymap's response (``FetchResponse`` per message, updates merged), exactly.
    """

    def __init__(
        self,
        cmd: FetchCommand,
        shape: _Shape,
        selected: SelectedMailbox,
        messages: list[tuple[int, Any]],
    ) -> None:
        super().__init__(cmd.tag, cmd.command + b" completed.")
        self._cmd = cmd
        self._shape = shape
        self._selected = selected
        self._pending: list[tuple[int, Any]] | None = messages
        if any(msg.expunged for _, msg in messages):
            self._become_pymap()

    @property
    def plain(self) -> bool:
        """True while the fast writer may write this response."""
        return self._pending is not None

    def _become_pymap(self) -> None:
        """Build pymap's own response objects, as pymap's ``do_fetch`` does."""
        messages, self._pending = self._pending, None
        for seq, msg in messages or ():
            if msg.expunged:
                self.code = ResponseCode.of(b"EXPUNGEISSUED")
            attrs = MessageAttributes(msg, self._selected, self._cmd.attributes)
            super().add_untagged(FetchResponse(seq, attrs, writing_hook=attrs.load_hook()))

    def add_untagged(self, *responses: Any) -> None:
        if responses and self._pending is not None:
            self._become_pymap()
        super().add_untagged(*responses)

    async def write_fast(self, out: Any, flush_at: int) -> None:
        """Write the FETCH lines to ``out`` (``write``, async ``flush``, ``size``)."""
        pending = self._pending
        assert pending is not None
        shape = self._shape
        plan = shape.plan
        requirement = shape.requirement
        session_flags = self._selected.session_flags
        for seq, msg in pending:
            loaded = None
            if requirement:
                loaded = await msg.load_content(requirement)
                if not isinstance(loaded, LazyLoadedMessage):
                    # no bytes to give (the file went away): pymap's own rendering
                    attrs = MessageAttributes(msg, self._selected, self._cmd.attributes)
                    await FetchResponse(seq, attrs, writing_hook=attrs.load_hook()).async_write(out)
                    continue
            parts = [b"* %d FETCH (" % seq]
            first = True
            for kind, name in plan:
                if not first:
                    parts.append(b" ")
                first = False
                parts.append(name)
                if kind == _LITERAL:
                    assert loaded is not None
                    raw = bytes(loaded)
                    parts.append(b" {%d}\r\n" % len(raw))
                    parts.append(raw)
                elif kind == _SIZE:
                    assert loaded is not None
                    parts.append(b" %d" % loaded.get_size())
                elif kind == _UID:
                    parts.append(b" %d" % msg.uid)
                else:
                    parts.append(b" " + bytes(List(msg.get_flags(session_flags), sort=True)))
            parts.append(b")\r\n")
            out.write(b"".join(parts))
            if out.size >= flush_at:
                await out.flush()
        Response.write(self, out)


class FastFetchState(ConnectionState):
    """pymap's connection state, whose FETCH returns a :class:`FastFetchOk` for a command
    :func:`recognise` built (and does what pymap does for every other)."""

    async def do_fetch(self, cmd: FetchCommand) -> Any:
        shape = getattr(cmd, "_wirelab_fast", None)
        if shape is None:
            return await super().do_fetch(cmd)
        selected = self.selected
        if not cmd.uid:
            selected.hide_expunged = True
        set_seen = not selected.readonly and shape.sets_seen
        messages, updates = await self.session.fetch_messages(selected, cmd.sequence_set, set_seen)
        return FastFetchOk(cmd, shape, selected, list(messages)), updates
