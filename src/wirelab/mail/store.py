"""The lab mail host's store: one Maildir per account, and the accounts with hashed passwords.

One store serves SMTP delivery (chapter 13) and the POP3 and IMAP servers (chapters 14-15)::

    ROOT/accounts.json     {"brandon": {"scrypt": "n=16384,r=8,p=1", "salt": .., "hash": ..}}
    ROOT/users/brandon/Maildir/{tmp,new,cur}/

Delivery (:meth:`MailStore.deliver`, :meth:`MailStore.deliver_async`) is the Maildir protocol
made durable: the message is written under ``tmp/``, its data fdatasynced, renamed into
``new/`` and the ``new/`` directory fsynced; only then does it return. One writer thread does
this for every delivery of the process, in batches: concurrent messages share one directory
fsync (group commit). A crash at any moment leaves either no trace in ``new/`` or the complete
message: readers never look in ``tmp/`` (stale files there are removed by
:meth:`MailStore.clean_tmp`).

The SMTP server accepts mail through :meth:`MailStore.accept_async` instead: the message is
appended to the store's spool journal (``ROOT/.spool``, :mod:`wirelab.mail.spool`) and
synced, the server answers 250, and the same Maildir delivery follows at once; a store opened
after a crash delivers what a dead process's journal holds (decision 0122).

The bytes are stored exactly as received (CRLF line ends, the DATA content after
dot-unstuffing), so a message sent over SMTP and fetched over POP3 or IMAP is byte-identical.
File names follow the Maildir convention ``TIME.M<usec>P<pid>Q<n>.HOST,S=<size>``; the ``,S=``
part lets a reader report sizes without a ``stat``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from wirelab.config import Account
from wirelab.errors import ConfigError, Timeout, WirelabError
from wirelab.mail.spool import (
    JournalRecord,
    Segment,
    Spool,
    SpoolFull,
    fsync_dir,
    recover_segments,
)

__all__ = [
    "JOURNAL_MAX_BYTES",
    "LAB_DOMAINS",
    "MAX_MESSAGE_BYTES",
    "MailStore",
    "StoredMessage",
    "hash_password",
    "verify_password",
]

#: The domains the lab mail host is the destination for (Postfix's ``mydestination`` in the
#: book's playground). Anything else is relaying, which the lab never does.
LAB_DOMAINS = frozenset({"example.com", "mail.example.com", "localhost"})

#: The largest message the store takes (the SMTP server advertises it as SIZE). The book's
#: Postfix advertised SIZE 10240000.
MAX_MESSAGE_BYTES = 10_240_000

#: Messages up to this size are acknowledged from the spool journal (decision 0122); a larger
#: one is delivered into its Maildirs before its 250, as it would cost a second write of all
#: its bytes for the one sync saved (at disk speed about what a sync costs for 256 KiB).
JOURNAL_MAX_BYTES = 256 << 10

#: scrypt cost: n=2**14, r=8, p=1 (about 16 MiB and a few tens of milliseconds per check).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
log = logging.getLogger("wirelab.mail.store")
_USER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_counter = itertools.count(1)
_counter_lock = threading.Lock()


def hash_password(password: str, *, salt: bytes | None = None) -> dict[str, str]:
    """Hash ``password`` with scrypt; the record stored in ``accounts.json``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return {
        "scrypt": f"n={_SCRYPT_N},r={_SCRYPT_R},p={_SCRYPT_P}",
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(digest).decode("ascii"),
    }


def verify_password(password: str, record: dict[str, str]) -> bool:
    """True when ``password`` matches ``record`` (constant-time comparison)."""
    try:
        params = dict(item.split("=", 1) for item in record["scrypt"].split(","))
        salt = base64.b64decode(record["salt"])
        expected = base64.b64decode(record["hash"])
        digest = hashlib.scrypt(
            password.encode("utf-8", "surrogateescape"),
            salt=salt,
            n=int(params["n"]),
            r=int(params["r"]),
            p=int(params["p"]),
            dklen=len(expected),
        )
    except (KeyError, ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class StoredMessage:
    """One message in a Maildir: its file name (the key), folder (``new``/``cur``) and path."""

    key: str
    folder: str
    path: Path

    @property
    def size(self) -> int:
        """The message's size in bytes."""
        return self.path.stat().st_size

    def read_bytes(self) -> bytes:
        """The message exactly as delivered."""
        return self.path.read_bytes()


#: The directory sync, by this module's name so tests can watch the store's own calls.
_fsync_dir = fsync_dir


class _Ticket:
    """A journaled message: checkpointed once every recipient's copy is durable."""

    __slots__ = ("failed", "remaining", "segment", "seq", "spool")

    def __init__(self, spool: Spool, segment: Segment, seq: int, copies: int) -> None:
        self.spool = spool
        self.segment = segment
        self.seq = seq
        self.remaining = copies
        self.failed = False


class _Job:
    """One message for one Maildir, waiting for the writer (``ticket``: its journal record,
    for a message the SMTP server has acknowledged already)."""

    __slots__ = ("base", "data", "future", "name", "ticket")

    def __init__(
        self,
        base: Path,
        name: str,
        data: bytes,
        future: Future[StoredMessage],
        ticket: _Ticket | None = None,
    ) -> None:
        self.base = base
        self.name = name
        self.data = data
        self.future = future
        self.ticket = ticket


#: A batch stops growing at this many messages or bytes (the data is in memory already:
#: this bounds the latency one batch adds to the message that waits at its end).
_BATCH_MESSAGES = 256
_BATCH_BYTES = 64 << 20

#: After a batch of N messages the writer waits for N again, at most this share of the time
#: the last batch took to commit, and never more than :data:`_LINGER_MAX` seconds. One client
#: (N = 1) never waits: its next message is a batch of one again.
_LINGER_SHARE = 0.5
_LINGER_MAX = 0.005


class _Committer:
    """The delivery writer: one thread that commits queued messages in batches (group commit).

    A batch is whatever was queued when the writer became free: every message is written to
    its own file in ``tmp/``, then each file is ``fdatasync``-ed (its bytes and size, the
    metadata needed to read them back), then each is renamed into ``new/``, then each ``new/``
    directory of the batch is fsynced *once*, which makes every rename of the batch durable.
    Only then is each message's future resolved, and only then does the SMTP server answer
    250: nothing is acknowledged before its data and its directory entry are on disk.

    One delivery alone (one SMTP client) is a batch of one: the two syncs the Maildir protocol
    needs and nothing more. Concurrent deliveries queue while a batch is being synced and share
    the next batch's directory sync. One thread also means no GIL hand-offs between a pool of
    workers and the event loop for every small system call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._jobs: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._jobs = deque()
        self._thread = None

    def submit(self, base: Path, name: str, data: bytes) -> Future[StoredMessage]:
        future: Future[StoredMessage] = Future()
        self.submit_jobs([_Job(base, name, data, future)])
        return future

    def submit_jobs(self, jobs: list[_Job]) -> None:
        with self._lock:
            self._jobs.extend(jobs)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="wirelab-lab-maildir-writer", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def _take(self, expected: int, linger: float) -> list[_Job]:
        with self._lock:
            while not self._jobs:
                self._ready.wait()
            if len(self._jobs) < expected:  # the clients just answered are coming back
                deadline = time.monotonic() + linger
                while len(self._jobs) < expected:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
            batch: list[_Job] = []
            size = 0
            while self._jobs and len(batch) < _BATCH_MESSAGES and size < _BATCH_BYTES:
                job = self._jobs.popleft()
                # a cancelled future: its client is gone, unless the message is journaled
                # (acknowledged already: it is delivered whoever waits for it)
                if job.future.set_running_or_notify_cancel() or job.ticket is not None:
                    batch.append(job)
                    size += len(job.data)
            return batch

    def _run(self) -> None:
        expected, linger = 1, 0.0
        while True:
            batch = self._take(expected, linger)
            started = time.monotonic()
            try:
                _commit(batch)
            except BaseException as exc:  # never leave a client waiting forever
                for job in batch:
                    _fail(job, exc)
                if not isinstance(exc, Exception):
                    raise
            # the next batch waits a little for as many messages as this one had: clients
            # that were just answered send their next message in about one SMTP exchange,
            # and a full batch costs the same two syncs as a small one
            expected = max(1, len(batch))
            linger = min((time.monotonic() - started) * _LINGER_SHARE, _LINGER_MAX)


def _store_error(exc: BaseException) -> WirelabError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    error = WirelabError(f"cannot store the message: {reason}")
    error.__cause__ = exc
    return error


def _fail(job: _Job, exc: BaseException, tmp_path: Path | None = None) -> None:
    if tmp_path is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
    if job.ticket is not None and not job.ticket.failed:
        # acknowledged already: it stays in the spool, never checkpointed, and the next start
        # delivers it (recover_segments)
        job.ticket.failed = True
        job.ticket.spool.abandon()
        log.warning("delivery of an accepted message failed, kept in the spool: %s", exc)
    if not job.future.done():
        job.future.set_exception(_store_error(exc))


_Checkpoints = dict[tuple[Spool, Segment], list[int]]


def _delivered(job: _Job, stored: StoredMessage, checkpoints: _Checkpoints) -> None:
    if not job.future.done():
        job.future.set_result(stored)
    ticket = job.ticket
    if ticket is not None and not ticket.failed:
        ticket.remaining -= 1
        if ticket.remaining == 0:
            checkpoints.setdefault((ticket.spool, ticket.segment), []).append(ticket.seq)


def _open_tmp(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:  # the Maildir was removed under us: make it again, once
        for sub in ("tmp", "new", "cur"):
            (path.parent.parent / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, flags, 0o600)


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)`` (not in :mod:`os`), or None where the C library lacks it."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[int], int]", function)


_SYNCFS = _load_syncfs()


def _sync_filesystems(fds: list[int]) -> bool:
    """Make the data of every file in ``fds`` durable with one ``syncfs`` per filesystem.

    One call writes back and commits a whole batch where a ``fdatasync`` per file would
    commit the journal once per file. False (the caller fdatasyncs each file) where syncfs
    is missing or reports an error, so a failing file is told apart from the others.
    """
    if _SYNCFS is None:
        return False
    devices: dict[int, int] = {}
    try:
        for fd in fds:
            devices.setdefault(os.fstat(fd).st_dev, fd)
    except OSError:
        return False
    return all(_SYNCFS(fd) == 0 for fd in devices.values())


def _commit(batch: list[_Job]) -> None:
    """Write, fdatasync, rename and directory-fsync one batch (see :class:`_Committer`)."""
    written: list[tuple[_Job, int]] = []
    for job in batch:
        tmp_path = job.base / "tmp" / job.name
        try:
            fd = _open_tmp(tmp_path)
        except OSError as exc:
            _fail(job, exc)
            continue
        try:
            view = memoryview(job.data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            os.close(fd)
            _fail(job, exc, tmp_path)
            continue
        written.append((job, fd))
    synced: list[_Job] = []
    whole = _sync_filesystems([fd for _, fd in written]) if len(written) > 1 else False
    for job, fd in written:
        try:
            if not whole:
                os.fdatasync(fd)
        except OSError as exc:
            _fail(job, exc, job.base / "tmp" / job.name)
        else:
            synced.append(job)
        finally:
            os.close(fd)
    renamed: dict[Path, list[_Job]] = {}
    for job in synced:
        tmp_path = job.base / "tmp" / job.name
        try:
            os.rename(tmp_path, job.base / "new" / job.name)
        except OSError as exc:
            _fail(job, exc, tmp_path)
        else:
            renamed.setdefault(job.base / "new", []).append(job)
    checkpoints: _Checkpoints = {}
    for directory, jobs in renamed.items():
        try:
            _fsync_dir(directory)
        except OSError as exc:
            # visible but not known durable: the client is told 451 and sends again (a
            # duplicate where no 250 was seen, never a loss)
            for job in jobs:
                _fail(job, exc)
        else:
            for job in jobs:
                _delivered(job, StoredMessage(job.name, "new", directory / job.name), checkpoints)
    for (spool, segment), seqs in checkpoints.items():
        try:
            spool.checkpoint(segment, seqs)
        except OSError as exc:  # the next start delivers them again, skipping what is there
            log.warning("cannot checkpoint delivered messages in the spool: %s", exc)


_COMMITTER = _Committer()


class _Accept:
    """One message the SMTP server accepted, waiting for the journal writer."""

    __slots__ = ("bases", "data", "durable", "loop", "name", "spool", "users", "visible")

    def __init__(
        self,
        spool: Spool,
        name: str,
        users: list[str],
        bases: list[Path],
        data: bytes,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.spool = spool
        self.name = name
        self.users = tuple(users)
        self.bases = bases
        self.data = data
        self.loop = loop
        # resolved from the journal thread through call_soon_threadsafe: one wake-up of the
        # loop, no concurrent.futures.Future (and its Condition) per message
        self.durable: asyncio.Future[None] = loop.create_future()
        self.visible: list[Future[StoredMessage]] = [Future() for _ in bases]

    def resolve(self, error: BaseException | None = None) -> None:
        """Tell the waiting SMTP session (on its loop) that the message is durable, or not."""
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
            self.loop.call_soon_threadsafe(_settle_waiter, self.durable, error)


def _settle_waiter(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if waiter.done():  # cancelled: the session went away
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


class _JournalWriter:
    """The spool writer: one thread that appends accepted messages to the journal in groups,
    makes them durable with one ``fdatasync`` per group, resolves their ``durable`` futures
    (the SMTP server answers 250) and hands them to the Maildir writer (:class:`_Committer`).

    Nothing is acknowledged before the group's ``fdatasync`` has returned. Concurrent messages
    queue while a group is being synced and share the next group's sync.
    """

    def __init__(self) -> None:
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: deque[_Accept] = deque()
        self._thread: threading.Thread | None = None

    def submit(self, accept: _Accept) -> None:
        with self._lock:
            self._queue.append(accept)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="wirelab-lab-mail-spool", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def _take(self) -> list[_Accept]:
        with self._lock:
            while not self._queue:
                self._ready.wait()
            group: list[_Accept] = []
            size = 0
            while self._queue and len(group) < _BATCH_MESSAGES and size < _BATCH_BYTES:
                accept = self._queue.popleft()
                # a cancelled waiter: its client is gone before anything was written (a
                # client that goes just after this check was never told 250: a message
                # journaled and delivered for it is a duplicate at worst, never a loss)
                if not accept.durable.cancelled():
                    group.append(accept)
                    size += len(accept.data)
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
            by_spool: dict[Spool, list[_Accept]] = {}
            for accept in group:
                by_spool.setdefault(accept.spool, []).append(accept)
            for spool, accepts in by_spool.items():
                try:
                    _journal(spool, accepts)
                except BaseException as exc:  # never leave a client waiting forever
                    error = exc if isinstance(exc, SpoolFull) else _store_error(exc)
                    for accept in accepts:
                        accept.resolve(error)
                    if not isinstance(exc, Exception):
                        raise


def _journal(spool: Spool, accepts: list[_Accept]) -> None:
    """Append, sync, acknowledge, then queue the Maildir deliveries of one group."""
    placed = spool.append([(a.name, a.users, a.data) for a in accepts])
    for segment in {segment for segment, _ in placed}:
        spool.sync(segment)
    jobs: list[_Job] = []
    for accept, (segment, seq) in zip(accepts, placed, strict=True):
        accept.resolve()
        ticket = _Ticket(spool, segment, seq, len(accept.bases))
        jobs += [
            _Job(base, accept.name, accept.data, future, ticket)
            for base, future in zip(accept.bases, accept.visible, strict=True)
        ]
    _COMMITTER.submit_jobs(jobs)


_JOURNAL = _JournalWriter()
_SPOOLS: dict[Path, Spool] = {}
_SPOOLS_LOCK = threading.Lock()


def _forget_spools() -> None:
    global _SPOOLS_LOCK
    _SPOOLS_LOCK = threading.Lock()
    _SPOOLS.clear()  # the parent's segments and their locks are the parent's


os.register_at_fork(after_in_child=_forget_spools)


class MailStore:
    """The accounts and Maildirs under ``root``.

    Raises:
        ConfigError: ``root`` cannot be created.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot use {root} for mail: {exc.strerror or exc}") from exc
        self._accounts_file = root / "accounts.json"
        self._accounts_path = str(self._accounts_file)
        self._cache: tuple[tuple[int, int, int], dict[str, dict[str, str]]] | None = None
        self._local = threading.local()
        self._maildirs: dict[str, Path] = {}
        self._hostname = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self.spool_dir = root / ".spool"
        self._spool_cache: Spool | None = None
        recover_segments(self.spool_dir, self._redeliver)

    # -- accounts --------------------------------------------------------------------------
    def _records(self) -> dict[str, dict[str, str]]:
        """The accounts file, read again only when it changed (a ``stat`` per call)."""
        try:
            stat = os.stat(self._accounts_path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read {self._accounts_file}: {exc}") from exc
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = json.loads(self._accounts_file.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self._accounts_file}: {exc}") from exc
        records = data if isinstance(data, dict) else {}
        self._cache = (stamp, records)
        return records

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (``ROOT/.lock``, ``flock``): one writer of the accounts and
        one seeder at a time, across threads and processes (SMTP, POP3 and IMAP start
        together). Re-entrant within a thread."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def users(self) -> list[str]:
        """The account names, sorted."""
        return sorted(self._records())

    def add_account(self, user: str, password: str) -> None:
        """Create or update ``user`` (its password hashed) and its Maildir.

        Raises:
            ConfigError: an impossible user name.
        """
        if not _USER_RE.match(user):
            raise ConfigError(f"{user[:40]!r} is not a mail account name (a-z, 0-9, . _ -)")
        record = hash_password(password)
        with self.locked():
            records = dict(self._records())
            records[user] = record
            tmp = self.root / f".accounts.{os.getpid()}.{threading.get_ident()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(records, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._accounts_file)
            _fsync_dir(self.root)
        self.maildir(user)

    def authenticate(self, user: str, password: str) -> bool:
        """True when ``user`` exists and ``password`` is its password."""
        record = self._records().get(user)
        if record is None:
            verify_password(password, hash_password("x", salt=b"0" * 16))  # same cost
            return False
        return verify_password(password, record)

    def has_user(self, user: str) -> bool:
        """True when ``user`` is an account."""
        return user in self._records()

    # -- Maildirs --------------------------------------------------------------------------
    def maildir(self, user: str) -> Path:
        """``user``'s Maildir (created with ``tmp``, ``new`` and ``cur`` if missing)."""
        if not _USER_RE.match(user):
            raise ConfigError(f"{user[:40]!r} is not a mail account name")
        base = self.root / "users" / user / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (base / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        return base

    def _unique_name(self, size: int) -> str:
        with _counter_lock:
            n = next(_counter)
        now = time.time()
        sec = int(now)
        usec = int((now - sec) * 1_000_000)
        return f"{sec}.M{usec}P{os.getpid()}Q{n}.{self._hostname},S={size}"

    def _delivery_base(self, user: str) -> Path:
        base = self._maildirs.get(user)
        if base is None:
            base = self._maildirs[user] = self.maildir(user)
        return base

    def submit(self, user: str, data: bytes) -> Future[StoredMessage]:
        """Queue ``data`` for ``user``'s ``new/``; the future resolves once it is durable.

        The writer thread commits queued messages in batches (see :class:`_Committer`); the
        future's result is where the message is, or a :class:`WirelabError` with the reason
        the disk refused. Cancelling a future the writer has not taken yet drops its message.
        """
        base = self._delivery_base(user)
        return _COMMITTER.submit(base, self._unique_name(len(data)), data)

    async def deliver_async(self, users: list[str], data: bytes) -> list[StoredMessage]:
        """Store ``data`` in each of ``users``' Maildirs, durably, without blocking the loop.

        Raises:
            WirelabError: the disk refused, with the reason (other recipients' copies may
                be stored: a retry can duplicate, never lose).
        """
        futures = [asyncio.wrap_future(self.submit(user, data)) for user in users]
        return list(await asyncio.gather(*futures))

    def _spool(self) -> Spool:
        """This process's journal of the store (one per root, shared by every MailStore)."""
        spool = self._spool_cache
        if spool is None or spool.pid != os.getpid():
            key = self.spool_dir.resolve()
            with _SPOOLS_LOCK:
                spool = _SPOOLS.get(key)
                if spool is None:
                    spool = _SPOOLS[key] = Spool(key)
            self._spool_cache = spool
        return spool

    async def accept_async(self, users: list[str], data: bytes) -> list[Future[StoredMessage]]:
        """Accept ``data`` for ``users``: return once it is durable in the spool journal.

        What the SMTP server calls before its 250: the message is appended to this process's
        journal (``ROOT/.spool``) and ``fdatasync``-ed, concurrent messages sharing one sync.
        The Maildir deliveries follow at once (one future each, resolved when the message is
        durable in ``new/``); should one fail, the message stays in the journal and the next
        start of a store on this root delivers it.

        A message larger than :data:`JOURNAL_MAX_BYTES` skips the journal: it is delivered
        into the Maildirs first (:meth:`deliver_async`) and the futures are done on return.
        Journaling it would write it twice, and for a large message the time goes into the
        bytes, not the syncs.

        Raises:
            SpoolFull: no room in the journal now (SMTP ``452``; nothing was stored).
            WirelabError: the disk refused, with the reason (nothing acknowledged).
        """
        if len(data) > JOURNAL_MAX_BYTES:
            done: list[Future[StoredMessage]] = []
            for stored in await self.deliver_async(users, data):
                done.append(Future())
                done[-1].set_result(stored)
            return done
        bases = [self._delivery_base(user) for user in users]
        accept = _Accept(
            self._spool(),
            self._unique_name(len(data)),
            users,
            bases,
            data,
            asyncio.get_running_loop(),
        )
        _JOURNAL.submit(accept)
        await accept.durable
        return accept.visible

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every message this process accepted into the store (``accept_async``:
        the SMTP server, after its 250) is in its Maildir's ``new/`` or has failed there.

        Raises:
            Timeout: still not delivered after ``timeout`` seconds.
        """
        if not self._spool().settle(timeout):
            raise Timeout(f"accepted mail not delivered after {timeout:g} s")

    def close_spool(self) -> None:
        """Close this process's journal of the store (its server stopped): nothing is lost,
        messages still on their way to a Maildir are delivered first."""
        with _SPOOLS_LOCK:
            spool = _SPOOLS.get(self.spool_dir.resolve())
        if spool is not None:
            spool.close()

    def _redeliver(self, records: list[JournalRecord]) -> None:
        """Recovery: deliver journal records under their own names, skipping a name already
        in ``new/`` or ``cur/`` (delivered before the crash; perhaps read since)."""
        futures: list[Future[StoredMessage]] = []
        present: dict[str, set[str]] = {}
        for record in records:
            for user in record.users:
                base = self._delivery_base(user)
                if user not in present:
                    present[user] = {
                        name.split(":", 1)[0]
                        for folder in ("new", "cur")
                        for name in os.listdir(base / folder)
                    }
                if record.name in present[user]:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(base / "tmp" / record.name)  # the dead writer's partial copy
                futures.append(_COMMITTER.submit(base, record.name, record.data))
                present[user].add(record.name)
        for future in futures:
            future.result()

    def deliver(self, user: str, data: bytes) -> StoredMessage:
        """Store ``data`` in ``user``'s ``new/``, durably, and return where it is.

        Raises:
            WirelabError: the disk refused (full, read-only ...), with the reason.
        """
        return self.submit(user, data).result()

    def messages(self, user: str) -> list[StoredMessage]:
        """``user``'s messages in ``new/`` and ``cur/``, oldest first (never ``tmp/``)."""
        base = self.maildir(user)
        found: list[tuple[float, str, StoredMessage]] = []
        for folder in ("new", "cur"):
            for entry in os.scandir(base / folder):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key = entry.name.split(":", 1)[0]
                when = float(key.split(".", 1)[0]) if key.split(".", 1)[0].isdigit() else 0.0
                found.append((when, key, StoredMessage(key, folder, Path(entry.path))))
        found.sort(key=lambda item: (item[0], _sequence(item[1])))
        return [item[2] for item in found]

    def clear(self, user: str) -> None:
        """Remove every message of ``user`` (``tmp``, ``new`` and ``cur``)."""
        base = self.maildir(user)
        for folder in ("tmp", "new", "cur"):
            for entry in os.scandir(base / folder):
                if entry.is_file():
                    os.unlink(entry.path)

    def clean_tmp(self, user: str, older_than: float = 36 * 3600) -> int:
        """Remove files left in ``tmp/`` by a crash, older than ``older_than`` seconds."""
        base = self.maildir(user)
        removed = 0
        limit = time.time() - older_than
        for entry in os.scandir(base / "tmp"):
            if entry.is_file() and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
        return removed


def _sequence(key: str) -> tuple[int, int]:
    """Order deliveries within one second: microseconds, then the per-process counter."""
    match = re.search(r"\.M(\d+)P\d+Q(\d+)\.", key)
    if match is None:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2)))


def account_names(accounts: tuple[Account, ...]) -> list[str]:
    """The user names of ``accounts``."""
    return [account.user for account in accounts]
