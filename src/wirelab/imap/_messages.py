"""The Maildir message objects of the cached folder view (decision 0143).

* :class:`BytesMessage` and :class:`BytesMaildir`: a message stored as the exact bytes a
  client sent (APPEND, COPY), CR LF and all, where ``mailbox`` would re-render it;
* :class:`FileMessage`: pymap's Maildir message that knows its file, so that FETCH reads
  the file directly (and looks it up again when another session renamed it);
* :class:`LazyLoadedMessage`: a loaded message that parses its MIME structure only when
  something asks for more than the whole message's bytes or size.

:mod:`wirelab.imap._folder` builds its view of these; this module does no folder I/O
beyond reading one message file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from mailbox import MaildirMessage
from typing import Any, Self

from pymap.backend.maildir.mailbox import LoadedMessage, Maildir, Message
from pymap.bytes import Writeable
from pymap.interfaces.message import CachedMessage
from pymap.mime import MessageContent
from pymap.parsing.specials import FetchRequirement

__all__ = ["BytesMaildir", "BytesMessage", "FileMessage", "LazyLoadedMessage"]


class BytesMessage(MaildirMessage):
    """A Maildir message to store as these exact bytes (see :class:`BytesMaildir`)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw


class BytesMaildir(Maildir):
    """pymap's Maildir that writes a :class:`BytesMessage` as its bytes, CR LF and all
    (``mailbox`` would re-render it with ``email`` and LF line ends)."""

    def _dump_message(self, message: Any, target: Any, mangle_from_: bool = False) -> None:
        if isinstance(message, BytesMessage):
            target.write(message.raw)
            return
        super()._dump_message(message, target, mangle_from_)


class LazyLoadedMessage(LoadedMessage):
    """A loaded message that parses its MIME structure only when something asks for it.

    ``BODY[]``, ``RFC822`` and ``RFC822.SIZE`` are the file's bytes and their length: they
    are answered without pymap's line-by-line MIME parse (about 10 ms a MiB).
    """

    __slots__ = ["_raw"]

    def __init__(self, message: Message, requirement: FetchRequirement, raw: bytes) -> None:
        super().__init__(message, requirement, None)
        self._raw = raw

    @property
    def content(self) -> MessageContent:
        if self._content is None:
            self._content = MessageContent.parse(self._raw)
        return self._content

    def __bytes__(self) -> bytes:
        return self._raw

    def get_body(self, section: Sequence[int] | None = None, binary: bool = False) -> Writeable:
        if not section and not binary:
            return Writeable.wrap(self._raw)
        return super().get_body(section, binary)

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section:
            return len(self._raw)
        return super().get_size(section)


class FileMessage(Message):
    """pymap's Maildir message, which knows its file: FETCH reads it directly."""

    __slots__ = ["_file"]

    def __init__(self, *args: Any, file: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file = file

    async def load_content(self, requirement: FetchRequirement) -> LoadedMessage:
        if self._file is None or requirement.has_none(FetchRequirement.CONTENT):
            return LoadedMessage(self, requirement, None)
        raw = self._read()
        if raw is None:
            return LoadedMessage(self, requirement, None)
        return LazyLoadedMessage(self, requirement, raw)

    def _read(self) -> bytes | None:
        assert self._file is not None
        try:
            with open(self._file, "rb") as file:
                return file.read()
        except FileNotFoundError:
            pass
        # renamed by another session (a flag change) since the view was built: look it up
        maildir, key = self._maildir, self._key
        if maildir is None or key is None:
            return None
        try:
            with open(os.path.join(maildir._path, maildir._lookup(key)), "rb") as file:
                return file.read()
        except (KeyError, FileNotFoundError):
            return None

    @classmethod
    def copy_expunged(cls, msg: CachedMessage) -> Self:
        assert isinstance(msg, Message)
        return cls(
            msg.uid,
            msg.internal_date,
            msg.permanent_flags,
            expunged=True,
            email_id=msg.email_id,
            thread_id=msg.thread_id,
            maildir=msg._maildir,
            key=msg._key,
            file=msg._file if isinstance(msg, FileMessage) else None,
        )
