"""A cached folder view for pymap's Maildir backend (decision 0140, "Performance").

pymap's Maildir backend rebuilds the selected folder on every command: it lists ``new/`` and
``cur/``, stats every message, parses its uid list file two or three times, and builds a
message object per message, per command, and again per message a FETCH or SEARCH touches
(each ``get`` re-reads the whole uid list). At 1000 messages one ``UID FETCH`` cost about
170 ms. :class:`CachedMailboxData` keeps the folder in memory instead:

* **the view**: UID -> (key, file name, flags, internal date, message object), built by one
  scan of ``new/`` and ``cur/`` (``os.scandir``, no stat per entry) joined with the uid list;
* **change detection**: the view is reused while the ``(inode, mtime, size)`` stamps of
  ``new/``, ``cur/`` and the uid list are unchanged. A delivery (rename into ``new/``), a flag
  change (rename in ``cur/``), a deletion (unlink) or a uid list rewrite changes one of them.
  File times are coarse (a clock tick), so a stamp younger than :data:`RACY` when it was
  taken is not trusted: the next command scans again (git's "racily clean" rule);
* **own writes**: every operation of ours that writes (APPEND, STORE, COPY, MOVE, EXPUNGE,
  claiming ``\\Recent``) marks the view stale;
* **what is kept between scans**: each file's mtime (the INTERNALDATE; a rename keeps it) and
  the parsed uid list (re-read only when its stamp changes);
* **content**: FETCH reads the message file directly by the path in the view (no ``email``
  package parse of the whole message first, as ``mailbox.Maildir.get_message`` does), and
  falls back to a lookup when another session renamed it meanwhile;
* **selected sessions**: a session already synchronized with the current view is not
  compared message by message again.

The semantics are pymap's: same UIDs, flags, ``\\Recent``, expunges; only the work per
command changes.

The message objects of the view are :mod:`wirelab.imap._messages`'s; the faster pymap methods
installed at server start are :mod:`wirelab.imap._speedups`'s.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterable, Iterable
from datetime import datetime
from mailbox import MaildirMessage
from typing import Self

from pymap.backend.maildir.mailbox import MailboxData, MailboxSet, Maildir, Message
from pymap.backend.maildir.uidlist import Record, UidList
from pymap.concurrent import Event
from pymap.context import current_command
from pymap.flags import FlagOp
from pymap.interfaces.message import CachedMessage
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials import ObjectId
from pymap.parsing.specials.flag import Flag
from pymap.selected import SelectedMailbox

from wirelab.imap._messages import BytesMessage, FileMessage

__all__ = ["RACY", "CachedMailboxData", "CachedMailboxSet"]

#: A stamp whose mtime is this close (seconds) to the moment it was read is not trusted.
RACY = 0.1

_STORE_NAME = re.compile(r"(\d+)\.M(\d+)P\d+Q(\d+)\.")

_Stamp = tuple[int, int, int]  # (inode, mtime_ns, size); (0, 0, 0): missing


def _stamp(path: str) -> _Stamp:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class CachedMailboxData(MailboxData):
    """pymap's Maildir folder with a cached view (see the module docstring)."""

    def __init__(self, mailbox_id: ObjectId, maildir: Maildir, path: str) -> None:
        super().__init__(mailbox_id, maildir, path)
        self._stamps: tuple[_Stamp, _Stamp, _Stamp] | None = None
        self._uidlist_stamp: _Stamp | None = None
        self._records: dict[int, Record] = {}
        self._mtimes: dict[str, float] = {}  # key -> file mtime, kept across scans
        self._by_key: dict[str, int] = {}
        self._view: dict[int, FileMessage] = {}
        self._version = 0
        self._stale = True
        self.scans = 0  # full rescans done (for tests and the benchmark)
        base = maildir._path
        self._watched = (
            os.path.join(base, "new"),
            os.path.join(base, "cur"),
            UidList.get_file(path),
        )
        self._checked_for: object = None  # the command whose start checked the stamps

    # -- change detection --------------------------------------------------------------------
    def _current_stamps(self) -> tuple[_Stamp, _Stamp, _Stamp]:
        new, cur, uids = self._watched
        return (_stamp(new), _stamp(cur), _stamp(uids))

    def mark_stale(self) -> None:
        """Forget the view: the next command scans the folder again."""
        self._stale = True

    async def refresh(self) -> None:
        """Scan the folder again if anything may have changed since the last scan."""
        if not self._stale and self._current_stamps() == self._stamps:
            return
        await self._scan()

    async def _scan(self) -> None:
        self.scans += 1
        started = time.time()
        stamps = self._current_stamps()
        listing = self._list()
        if stamps[2] != self._uidlist_stamp or any(k not in self._by_key for k in listing):
            await self._read_uidlist(listing)
            stamps = (stamps[0], stamps[1], _stamp(UidList.get_file(self._path)))
        self._build(listing)
        # a stamp as young as the clock's tick may hide a change made in the same tick
        newest = max(stamp[1] for stamp in stamps) / 1e9
        self._stale = newest >= started - RACY
        self._stamps = stamps
        self._version += 1

    def _list(self) -> dict[str, tuple[str, str]]:
        """key -> (subdir, file name) for every message in ``new/`` and ``cur/``."""
        colon = self._maildir.colon
        found: dict[str, tuple[str, str]] = {}
        base = self._maildir._path
        for subdir in ("new", "cur"):
            try:
                entries = os.scandir(os.path.join(base, subdir))
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") or not entry.is_file():
                        continue
                    found[name.split(colon, 1)[0]] = (subdir, name)
        return found

    async def _read_uidlist(self, listing: dict[str, tuple[str, str]]) -> None:
        """Read the uid list, adding records for messages it does not know (pymap's reset)."""
        async with UidList.with_read(self._path) as uidl:
            known = {rec.key for rec in uidl.records}
        if any(key not in known for key in listing):
            colon = self._maildir.colon
            async with UidList.with_write(self._path) as uidl:
                known = {rec.key for rec in uidl.records}
                fresh = [key for key in listing if key not in known]
                for key in sorted(fresh, key=lambda k: self._delivery_order(k, listing[k])):
                    name = listing[key][1]
                    info = name.split(colon, 1)[1] if colon in name else ""
                    fields = {
                        "E": str(ObjectId.random_email_id()),
                        "T": str(ObjectId.random_thread_id()),
                    }
                    uidl.set(Record(uidl.next_uid, fields, key + ":" + info))
                    uidl.next_uid += 1
        self._records = {rec.uid: rec for rec in uidl.records}
        self._by_key.clear()
        self._by_key.update((rec.key, rec.uid) for rec in uidl.records)
        self._uid_validity = uidl.uid_validity
        self._next_uid = uidl.next_uid
        self._uidlist_stamp = _stamp(UidList.get_file(self._path))

    def _delivery_order(self, key: str, where: tuple[str, str]) -> tuple[float, int, str]:
        """New messages get their UIDs in the order they arrived (pymap: directory order).

        The store's names say it (``seconds.M<micro>P<pid>Q<count>``); for any other name,
        the file's mtime.
        """
        match = _STORE_NAME.match(key)
        if match is not None:
            sec, usec, count = match.groups()
            return (int(sec) + int(usec) / 1e6, int(count), key)
        mtime = self._mtimes.get(key)
        if mtime is None:
            try:
                mtime = os.stat(os.path.join(self._maildir._path, *where)).st_mtime
            except FileNotFoundError:
                mtime = 0.0
            self._mtimes[key] = mtime
        return (mtime, 0, key)

    def _build(self, listing: dict[str, tuple[str, str]]) -> None:
        maildir = self._maildir
        colon = maildir.colon
        base = maildir._path
        flags = self.maildir_flags
        old = self._view
        mtimes = self._mtimes
        view: dict[int, FileMessage] = {}
        for uid in sorted(self._records):
            rec = self._records[uid]
            key = rec.key
            where = listing.get(key)
            if where is None:
                continue
            subdir, name = where
            subpath = os.path.join(subdir, name)
            maildir._update(key, subpath)  # pymap's own lookups find it without a rescan
            path = os.path.join(base, subpath)
            previous = old.get(uid)
            if previous is not None and previous._file == path:
                view[uid] = previous
                continue
            mtime = mtimes.get(key)
            if mtime is None:
                try:
                    mtime = mtimes[key] = os.stat(path).st_mtime
                except FileNotFoundError:
                    continue
            info = name.split(colon, 1)[1] if colon in name else ""
            flag_str = info[2:] if info.startswith("2,") else ""
            view[uid] = FileMessage(
                uid,
                datetime.fromtimestamp(mtime),
                flags.from_maildir(flag_str),
                email_id=ObjectId.maybe(rec.fields.get("E")),
                thread_id=ObjectId.maybe(rec.fields.get("T")),
                recent=subdir == "new",
                maildir=maildir,
                key=key,
                file=path,
            )
        for key in [k for k in mtimes if k not in listing]:
            del mtimes[key]
        self._view = view

    # -- pymap's MailboxData, served from the view ---------------------------------------------
    async def reset(self) -> Self:
        # pymap calls this at the start of every command on a folder
        await self.refresh()
        self._checked_for = current_command.get(None)
        return self

    async def messages(self) -> AsyncIterable[Message]:
        await self.refresh()
        for message in list(self._view.values()):
            yield message

    async def get(self, uid: int, cached_msg: CachedMessage) -> Message:
        if self._stale:
            await self.refresh()
        message = self._view.get(uid)
        if message is None:
            return FileMessage.copy_expunged(cached_msg)
        return message

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        if wait_on is not None:
            await wait_on.wait(timeout=1.0)
            await self.refresh()
        elif self._stale or self._checked_for is not current_command.get(None):
            await self.refresh()
        # else: this command's start checked the folder and nothing of ours changed it since;
        # what others do meanwhile is seen at the next command, as it would be a moment later
        synced = selected.messages
        mark = (id(self), self._version)
        # a session already given this very view has nothing to compare (unless it holds
        # expunges back until a command that may announce them)
        if getattr(synced, "_wirelab_view", None) == mark and not getattr(
            synced, "_pending_remove", True
        ):
            return selected
        selected.set_messages(list(self._view.values()))
        synced._wirelab_view = mark  # type: ignore[attr-defined]
        return selected

    # every write: pymap's own code (or ours where pymap's loses bytes), then the view is stale
    async def append(self, append_msg: AppendMessage, *, recent: bool = False) -> Message:
        """pymap's APPEND, but the file holds the literal as sent.

        pymap built an ``email`` message from it and ``mailbox`` wrote that back with LF line
        ends, so ``BODY[]`` of an appended message was not what the client appended.
        """
        try:
            maildir = self._maildir
            email_id = ObjectId.random_email_id()
            thread_id = ObjectId.random_thread_id()
            when = append_msg.when or datetime.now()
            message = BytesMessage(bytes(append_msg.literal))
            message.set_flags(self.maildir_flags.to_maildir(append_msg.flag_set))
            message.set_subdir("new" if recent else "cur")
            message.set_date(when.timestamp())
            async with self.messages_lock.write_lock():
                key = maildir.add(message)
            filename = key + ":" + message.get_info()
            async with UidList.with_write(self._path) as uidl:
                fields = {"E": str(email_id), "T": str(thread_id)}
                record = Record(uidl.next_uid, fields, filename)
                uidl.next_uid += 1
                uidl.set(record)
            return Message.from_maildir(
                record.uid, message, maildir, key, email_id, thread_id, self.maildir_flags
            )
        finally:
            self.mark_stale()

    async def copy(self, uid: int, destination: MailboxData, *, recent: bool = False) -> int | None:
        """pymap's COPY copied the file's metadata only (an empty message): copy the bytes."""
        try:
            try:
                record, metadata = await self._get_maildir_msg(uid)
            except KeyError:
                return None
            source = self._view.get(uid)
            raw = source._read() if source is not None else None
            if raw is None:
                return None
            message = BytesMessage(raw)
            message.set_info(metadata.get_info())
            message.set_subdir("new" if recent else "cur")
            message.set_date(metadata.get_date())
            async with destination.messages_lock.write_lock():
                key = destination._maildir.add(message)
            filename = key + ":" + message.get_info()
            async with UidList.with_write(destination._path) as uidl:
                copied = Record(uidl.next_uid, record.fields, filename)
                uidl.next_uid += 1
                uidl.set(copied)
            return copied.uid
        finally:
            if isinstance(destination, CachedMailboxData):
                destination.mark_stale()

    async def move(self, uid: int, destination: MailboxData, *, recent: bool = False) -> int | None:
        try:
            return await super().move(uid, destination, recent=recent)
        finally:
            self.mark_stale()
            if isinstance(destination, CachedMailboxData):
                destination.mark_stale()

    async def _get_maildir_msg(self, uid: int) -> tuple[Record, MaildirMessage]:
        """The record and file metadata of ``uid``, from the view (pymap re-read the uid list)."""
        if self._stale:
            await self.refresh()
        record = self._records.get(uid)
        message = self._view.get(uid)
        if record is None or message is None or message._file is None:
            raise KeyError(uid)
        subdir, name = os.path.split(os.path.relpath(message._file, self._maildir._path))
        colon = self._maildir.colon
        metadata = MaildirMessage()
        metadata.set_subdir("new" if subdir == "new" else "cur")
        if colon in name:
            metadata.set_info(name.rsplit(colon, 1)[-1])
        metadata.set_date(self._mtimes.get(record.key, message.internal_date.timestamp()))
        return record, metadata

    async def update(
        self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp
    ) -> Message:
        message = await super().update(uid, cached_msg, flag_set, mode)
        if message.expunged or message._key is None:
            return message
        # the file was renamed (its flags are in its name): patch the view now; its stamps no
        # longer match, so the next command's check scans the folder again
        maildir = self._maildir
        try:
            path = os.path.join(maildir._path, maildir._lookup(message._key))
        except KeyError:
            self.mark_stale()
            return message
        updated = FileMessage(
            uid,
            message.internal_date,
            message.permanent_flags,
            email_id=message.email_id,
            thread_id=message.thread_id,
            recent=message.recent,
            maildir=maildir,
            key=message._key,
            file=path,
        )
        self._view[uid] = updated
        self._version += 1
        return updated

    async def delete(self, uids: Iterable[int]) -> None:
        try:
            await super().delete(uids)
        finally:
            self.mark_stale()

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        try:
            await super().claim_recent(selected)
        finally:
            self.mark_stale()

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            self.mark_stale()


class CachedMailboxSet(MailboxSet):
    """pymap's Maildir folder set whose folders are :class:`CachedMailboxData`."""

    async def get_mailbox(self, name: str) -> MailboxData:
        cached = self._cache.get(name)
        if cached is not None:
            if name != "INBOX" and not os.path.isdir(cached._maildir._path):
                self._cache.pop(name, None)  # deleted (or renamed) by another session
                raise KeyError(name)
            return await cached.reset()
        if name == "INBOX":
            maildir = self._inbox_maildir
        else:
            try:
                maildir = self._layout.get_folder(name, self.delimiter)
            except FileNotFoundError as exc:
                raise KeyError(name) from exc
        path = self._layout.get_path(name, self.delimiter)
        async with UidList.with_init(path) as uidl:
            mailbox_id = ObjectId(uidl.global_uid)
        mbx = CachedMailboxData(mailbox_id, maildir, path)
        self._cache[name] = mbx
        return await mbx.reset()

    async def delete_mailbox(self, name: str) -> None:
        self._cache.pop(name, None)
        await super().delete_mailbox(name)

    async def rename_mailbox(self, before: str, after: str) -> None:
        await super().rename_mailbox(before, after)
        self._cache.pop(before, None)
        self._cache.pop(after, None)
