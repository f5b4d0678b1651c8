"""The lab mail host's store: one Maildir per account, and the accounts with hashed passwords.

One store serves SMTP delivery (chapter 13) and the POP3 and IMAP servers (chapters 14-15)::

    ROOT/accounts.json     {"brandon": {"scrypt": "n=16384,r=8,p=1", "salt": .., "hash": ..}}
    ROOT/users/brandon/Maildir/{tmp,new,cur}/

Delivery (:meth:`MailStore.deliver`) is the Maildir protocol made durable: the message is
written under ``tmp/``, the file is fsynced, renamed into ``new/`` and the ``new/`` directory
is fsynced. Only then does it return, and only then does the SMTP server answer 250. A crash
at any moment leaves either no trace in ``new/`` or the complete message: readers never look in
``tmp/`` (stale files there are removed by :meth:`MailStore.clean_tmp`).

The bytes are stored exactly as received (CRLF line ends, the DATA content after
dot-unstuffing), so a message sent over SMTP and fetched over POP3 or IMAP is byte-identical.
File names follow the Maildir convention ``TIME.M<usec>P<pid>Q<n>.HOST,S=<size>``; the ``,S=``
part lets a reader report sizes without a ``stat``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wirelab.config import Account
from wirelab.errors import ConfigError, WirelabError

__all__ = [
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

#: scrypt cost: n=2**14, r=8, p=1 (about 16 MiB and a few tens of milliseconds per check).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _GroupSync:
    """Group commit of directory fsyncs: concurrent deliveries share one ``fsync(new/)``.

    A caller needs a sync that *starts after* its rename. If none runs, it runs one itself;
    if one is running (it may have started before the rename), it waits for the next one,
    which one of the waiters runs for all of them. Each message's own file is still fsynced
    by its own delivery before the rename, and no caller returns before a directory sync
    that covers its rename has completed: nothing is acknowledged early.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._started: dict[Path, int] = {}
        self._completed: dict[Path, int] = {}
        self._running: set[Path] = set()

    def sync(self, directory: Path) -> None:
        with self._cond:
            target = self._started.get(directory, 0) + 1
            while self._completed.get(directory, 0) < target:
                if directory in self._running:
                    self._cond.wait()
                    continue
                generation = self._started[directory] = self._started.get(directory, 0) + 1
                self._running.add(directory)
                self._cond.release()
                try:
                    _fsync_dir(directory)
                finally:
                    self._cond.acquire()
                    self._running.discard(directory)
                    self._cond.notify_all()
                self._completed[directory] = generation


_GROUP_SYNC = _GroupSync()


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
        self._cache: tuple[tuple[int, int, int], dict[str, dict[str, str]]] | None = None
        self._local = threading.local()
        self._hostname = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    # -- accounts --------------------------------------------------------------------------
    def _records(self) -> dict[str, dict[str, str]]:
        """The accounts file, read again only when it changed (a ``stat`` per call)."""
        try:
            stat = self._accounts_file.stat()
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

    def deliver(self, user: str, data: bytes) -> StoredMessage:
        """Store ``data`` in ``user``'s ``new/``, durably, and return where it is.

        Raises:
            WirelabError: the disk refused (full, read-only ...), with the reason.
        """
        base = self.maildir(user)
        name = self._unique_name(len(data))
        tmp_path = base / "tmp" / name
        new_path = base / "new" / name
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp_path, new_path)
            _GROUP_SYNC.sync(base / "new")
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            raise WirelabError(f"cannot store the message: {exc.strerror or exc}") from exc
        return StoredMessage(name, "new", new_path)

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
