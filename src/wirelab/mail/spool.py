"""The mail host's spool journal: an acknowledged message is durable here before it is in a Maildir.

A 250 after DATA needs the message on disk. Delivering into a Maildir durably takes two
syncs (the file's data before its rename into ``new/``, then ``new/`` itself: decision 0121);
appending the message to a journal file takes one ``fdatasync``. So the SMTP server appends
every accepted message here, syncs, answers 250, and the Maildir delivery runs right after;
a record is *checkpointed* (a small record appended, not synced) once its Maildir file is
durable. This is the queue file of a real MTA (decision 0122).

Layout: ``ROOT/.spool/<pid>-<token>-<n>.wal``, one or more *segments* per process, each held
with ``flock`` by the process that writes it for as long as it lives, written with zeros
when it is made (the records then overwrite blocks the file has). Records, one after the
other from the start, the first zero byte after them ending the segment::

    magic "WLJ1" | kind (1 byte) | body length (u32) | crc32 of kind+length+body (u32) | body

    kind M (a message): seq (u64) | name length (u16) | name | users (u8) |
                        per user: length (u8) | user | the message's bytes
    kind C (delivered): seq (u64) ...

A segment whose writer is gone (its ``flock`` is free) is *recovered* when a store opens
(:func:`recover_segments`): every message record with a valid checksum and no checkpoint is
delivered under the Maildir name it was given when it was accepted, unless that name is
already in ``new/`` or ``cur/``; the first record that is short or fails its checksum ends
the segment (a torn tail: it was never acknowledged). Then the segment is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wirelab.errors import WirelabError

__all__ = [
    "JournalRecord",
    "Segment",
    "Spool",
    "SpoolFull",
    "encode_checkpoint",
    "encode_message",
    "fsync_dir",
    "parse_segment",
    "recover_segments",
]

log = logging.getLogger("wirelab.mail.spool")

MAGIC = b"WLJ1"
_HEADER = struct.Struct("<4sBII")  # magic, kind, body length, crc32
_KIND_MESSAGE = ord("M")
_KIND_CHECKPOINT = ord("C")
_SEQ = struct.Struct("<Q")
#: A record body larger than this is garbage (a torn length), not a message.
_MAX_BODY = 64 << 20
#: A segment takes new records until it is this large; then the next one starts, and the old
#: one is removed as soon as every message in it is checkpointed.
SEGMENT_BYTES = 2 << 20
#: The most bytes of journal one process keeps (live segments together) before refusing.
SPOOL_BYTES = 256 << 20


class SpoolFull(WirelabError):
    """The spool has no room for another message now (the SMTP server answers 452)."""


@dataclass(frozen=True)
class JournalRecord:
    """One accepted message as the journal holds it."""

    seq: int
    name: str
    users: tuple[str, ...]
    data: bytes


def _crc(kind: int, length: int, parts: Iterable[bytes | bytearray | memoryview]) -> int:
    crc = zlib.crc32(bytes((kind,)) + length.to_bytes(4, "little"))
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def encode_message(seq: int, name: str, users: Iterable[str], data: bytes) -> list[bytes]:
    """The buffers of one message record (written with one ``writev``; no copy of ``data``)."""
    raw_name = name.encode("utf-8")
    raw_users = [user.encode("utf-8") for user in users]
    meta = bytearray(_SEQ.pack(seq))
    meta += len(raw_name).to_bytes(2, "little") + raw_name + bytes((len(raw_users),))
    for user in raw_users:
        meta += bytes((len(user),)) + user
    length = len(meta) + len(data)
    head = _HEADER.pack(MAGIC, _KIND_MESSAGE, length, _crc(_KIND_MESSAGE, length, (meta, data)))
    return [head, bytes(meta), data]


def encode_checkpoint(seqs: Iterable[int]) -> bytes:
    """One checkpoint record: these messages are durable in their Maildirs."""
    body = b"".join(_SEQ.pack(seq) for seq in seqs)
    crc = _crc(_KIND_CHECKPOINT, len(body), (body,))
    return _HEADER.pack(MAGIC, _KIND_CHECKPOINT, len(body), crc) + body


def _decode_message(body: memoryview) -> JournalRecord:
    (seq,) = _SEQ.unpack_from(body, 0)
    at = _SEQ.size
    name_len = int.from_bytes(body[at : at + 2], "little")
    at += 2
    name = bytes(body[at : at + name_len]).decode("utf-8")
    at += name_len
    count = body[at]
    at += 1
    users = []
    for _ in range(count):
        user_len = body[at]
        users.append(bytes(body[at + 1 : at + 1 + user_len]).decode("utf-8"))
        at += 1 + user_len
    if at > len(body):
        raise ValueError("record too short")
    return JournalRecord(seq, name, tuple(users), bytes(body[at:]))


def parse_segment(raw: bytes) -> tuple[list[JournalRecord], set[int], int]:
    """The message records, the checkpointed seqs, and the bytes of ``raw`` that are valid.

    Parsing stops at the first record that is short, has a bad magic or length, or fails its
    checksum: a torn tail, never acknowledged (its ``fdatasync`` had not returned).
    """
    view = memoryview(raw)
    messages: list[JournalRecord] = []
    done: set[int] = set()
    at = 0
    while at + _HEADER.size <= len(view):
        magic, kind, length, crc = _HEADER.unpack_from(view, at)
        end = at + _HEADER.size + length
        if magic != MAGIC or length > _MAX_BODY or end > len(view):
            break
        body = view[at + _HEADER.size : end]
        if kind not in (_KIND_MESSAGE, _KIND_CHECKPOINT) or _crc(kind, length, (body,)) != crc:
            break
        if kind == _KIND_MESSAGE:
            try:
                messages.append(_decode_message(body))
            except (ValueError, IndexError, struct.error, UnicodeDecodeError):
                break
        else:
            if length % _SEQ.size:
                break
            done.update(seq for (seq,) in _SEQ.iter_unpack(body))
        at = end
    return messages, done, at


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename, a new file's name) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(eq=False)
class Segment:
    """One journal file of this process (held with ``flock`` while it is open)."""

    path: Path
    fd: int
    size: int = 0
    live: int = 0  # message records not yet checkpointed
    closed: bool = False


@dataclass(eq=False)
class Spool:
    """This process's journal for one store (``ROOT/.spool``): segments, appends, checkpoints.

    :meth:`append` (the journal writer thread) writes a group of message records to the
    current segment; the caller then :meth:`sync`\\ s it before anyone is told 250.
    :meth:`checkpoint` (the Maildir writer) records deliveries; a segment that is full and
    fully checkpointed is synced (so its checkpoints are durable) and removed.
    """

    directory: Path
    limit: int = SPOOL_BYTES
    segment_bytes: int = SEGMENT_BYTES
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _current: Segment | None = None
    _segments: list[Segment] = field(default_factory=list)
    _seq: int = 0
    _token: str = field(default_factory=lambda: secrets.token_hex(4))
    _opened: int = 0
    pid: int = field(default_factory=os.getpid)  # the process whose journal this is
    _unsettled: int = 0  # appended, neither checkpointed nor failed yet
    _settled: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._settled = threading.Condition(self._lock)

    def _open_segment(self) -> Segment:
        """A new segment, its blocks written with zeros and synced ahead of the records: a
        record then overwrites blocks the file already has, so its ``fdatasync`` writes the
        data and flushes, with no file-system journal commit for a new size or new blocks
        (measured here: 0.19 ms instead of 0.23 ms for 1 KiB, and less entangled with the
        Maildir's syncs). A record past the zeros extends the file, synced all the same."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._opened += 1
        path = self.directory / f"{os.getpid()}-{self._token}-{self._opened}.wal"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            zeros = bytes(min(self.segment_bytes, 1 << 20))
            for offset in range(0, self.segment_bytes, len(zeros)):
                _write_all(fd, [zeros[: self.segment_bytes - offset]], offset)
            os.fdatasync(fd)
            fsync_dir(self.directory)  # the file's name is durable before any record in it
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        segment = Segment(path, fd)
        self._segments.append(segment)
        return segment

    def append(
        self, records: list[tuple[str, tuple[str, ...], bytes]]
    ) -> list[tuple[Segment, int]]:
        """Write message records (name, users, data); where each went. Not yet durable.

        Raises:
            SpoolFull: the journal has no room for them now (nothing was written).
            OSError: the disk refused (the caller fails the whole group).
        """
        needed = sum(len(data) + 64 + len(name) for name, _, data in records)
        with self._lock:
            total = sum(segment.size for segment in self._segments)
            if total + needed > self.limit:
                raise SpoolFull("the mail spool is full, try again later")
            current = self._current
            if current is None or current.size >= self.segment_bytes:
                if current is not None:
                    os.fdatasync(current.fd)  # its records are durable before the next file's
                    current.closed = True
                    self._retire(current)
                current = self._current = self._open_segment()
            buffers: list[bytes] = []
            placed: list[tuple[Segment, int]] = []
            for name, users, data in records:
                self._seq += 1
                buffers += encode_message(self._seq, name, users, data)
                placed.append((current, self._seq))
            current.size += _write_all(current.fd, buffers, current.size)
            current.live += len(records)
            self._unsettled += len(records)
            return placed

    def sync(self, segment: Segment) -> None:
        """Make every record written to ``segment`` so far durable."""
        os.fdatasync(segment.fd)

    def checkpoint(self, segment: Segment, seqs: list[int]) -> None:
        """Record that these messages of ``segment`` are durable in their Maildirs."""
        with self._lock:
            if segment.fd < 0:
                self._settle_some(len(seqs))
                return
            record = encode_checkpoint(seqs)
            try:
                segment.size += _write_all(segment.fd, [record], segment.size)
            finally:  # delivered either way; unrecorded, a restart skips them in new/ or cur/
                segment.live -= len(seqs)
                self._retire(segment)
                self._settle_some(len(seqs))

    def _settle_some(self, count: int) -> None:
        self._unsettled -= count
        if self._unsettled <= 0:
            self._settled.notify_all()

    def abandon(self, count: int = 1) -> None:
        """These records' Maildir delivery failed: they stay in the journal, unsettled no
        more (the next start delivers them)."""
        with self._lock:
            self._settle_some(count)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every record appended so far is delivered (or failed); False on timeout."""
        with self._lock:
            return self._settled.wait_for(lambda: self._unsettled <= 0, timeout)

    def _retire(self, segment: Segment) -> None:
        """Remove ``segment`` once it takes no more records and every message in it is
        delivered: synced first, so a power cut cannot bring back records without their
        checkpoints."""
        if not segment.closed or segment.live > 0 or segment.fd < 0:
            return
        try:
            os.fdatasync(segment.fd)
            os.unlink(segment.path)
        except OSError as exc:  # left for the recovery at the next start: it skips delivered mail
            log.warning("cannot remove the spool segment %s: %s", segment.path.name, exc)
        os.close(segment.fd)
        segment.fd = -1
        self._segments.remove(segment)

    def close(self) -> None:
        """Stop writing to the current segment (a server on this store stopped): segments
        whose messages are all delivered are removed now, the others once they are. The next
        :meth:`append` starts a new segment."""
        with self._lock:
            for segment in list(self._segments):
                segment.closed = True
                self._retire(segment)
            self._current = None


def _write_all(fd: int, buffers: list[bytes], offset: int) -> int:
    """Write every buffer at ``offset`` (several ``pwritev`` calls for a large group; the
    caller holds the segment's lock); the bytes written."""
    views = [memoryview(b) for b in buffers if b]
    written = 0
    while views:
        n = os.pwritev(fd, views[:1024], offset + written)
        written += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]
    return written


#: ``deliver(records)``: put each record's message into each of its users' Maildirs durably
#: under the record's name, skipping a name already in ``new/`` or ``cur/``.
Deliverer = Callable[[list[JournalRecord]], None]


def recover_segments(directory: Path, deliver: Deliverer) -> int:
    """Deliver what dead writers' segments hold and remove them; the messages delivered.

    A segment is taken only with its ``flock`` (a live writer, in this process or another,
    holds it) and only while its path still names the file locked (another recoverer may
    have removed it). A segment that cannot be delivered now is kept for the next start.
    """
    try:
        names = sorted(entry for entry in os.listdir(directory) if entry.endswith(".wal"))
    except FileNotFoundError:
        return 0
    recovered = 0
    for entry in names:
        path = directory / entry
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    continue
            except FileNotFoundError:
                continue
            with open(fd, "rb", closefd=False) as stream:
                raw = stream.read(SPOOL_BYTES + _MAX_BODY)
            messages, done, _ = parse_segment(raw)
            pending = [record for record in messages if record.seq not in done]
            try:
                deliver(pending)
            except (OSError, WirelabError) as exc:
                log.warning("cannot recover the spool segment %s yet: %s", entry, exc)
                continue
            recovered += len(pending)
            os.unlink(path)
            fsync_dir(directory)
            if pending:
                log.info("recovered %d message(s) from the spool segment %s", len(pending), entry)
        finally:
            os.close(fd)
    return recovered
