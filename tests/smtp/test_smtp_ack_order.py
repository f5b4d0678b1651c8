"""A 250 only after the message is durable in the spool journal; in ``new/`` by the QUIT reply.

kill -9 cannot prove this (the page cache survives a killed process; only a power cut loses
it), so these tests watch the order of the store's system calls in the server's process and
compare it with the moment a real client got its 250 and its 221 (decision 0122):

* the message was written to the journal (``.spool/*.wal``) and a ``fdatasync`` of the
  journal *started after* that write and *ended before* the client saw 250;
* the message's data was synced (its own ``fdatasync``, or a ``syncfs`` of the batch) before
  it was renamed into ``new/``;
* a ``fsync`` of ``new/`` *started after* that rename and *ended before* the client saw the
  reply to QUIT.

Every sync is slowed down by a few tens of milliseconds, so a server that answered before a
sync had finished would be caught by a wide margin, not by a race. With one client each
message is a batch of its own (``fdatasync`` alone); with ten at once the deliveries pile up
behind the slow syncs and are committed in groups (fewer directory syncs than messages).
"""

from __future__ import annotations

import os
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import wirelab.mail.store as store_module
from tests.smtp.conftest import MailHost

BRANDON = "brandon@example.com"
SLOW = 0.03


@dataclass
class Calls:
    """The store's sync and rename calls, in order, with monotonic times."""

    root: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    data: list[tuple[str, float]] = field(default_factory=list)  # (tmp path or "*", end)
    journal_writes: list[tuple[bytes, float]] = field(default_factory=list)  # (bytes, end)
    journal_syncs: list[tuple[float, float]] = field(default_factory=list)  # (start, end)
    renames: dict[str, float] = field(default_factory=dict)  # key -> time
    dirs: list[tuple[str, float, float]] = field(default_factory=list)  # (dir, start, end)

    def ours(self, path: str) -> bool:
        return path.startswith(str(self.root))


@pytest.fixture
def calls(mail_host: MailHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    seen = Calls(mail_host.store.root.resolve())
    real_fdatasync, real_rename, real_pwritev = os.fdatasync, os.rename, os.pwritev
    real_fsync_dir, real_syncfs = store_module._fsync_dir, store_module._SYNCFS

    def fdatasync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        start = time.monotonic()
        time.sleep(SLOW)
        real_fdatasync(fd)
        if path.endswith(".wal"):
            with seen.lock:
                seen.journal_syncs.append((start, time.monotonic()))
        elif seen.ours(path):
            with seen.lock:
                seen.data.append((path, time.monotonic()))

    def pwritev(fd: int, buffers: list[bytes], offset: int) -> int:
        written = real_pwritev(fd, buffers, offset)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".wal"):
            with seen.lock:
                seen.journal_writes.append((b"".join(buffers), time.monotonic()))
        return written

    def syncfs(fd: int) -> int:
        assert real_syncfs is not None
        time.sleep(SLOW)
        result = real_syncfs(fd)
        with seen.lock:
            seen.data.append(("*", time.monotonic()))
        return result

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_rename(src, dst)
        if seen.ours(str(dst)) and Path(dst).parent.name == "new":
            with seen.lock:
                seen.renames[Path(dst).name] = time.monotonic()

    def fsync_dir(directory: Path) -> None:
        start = time.monotonic()
        time.sleep(SLOW)
        real_fsync_dir(directory)
        with seen.lock:
            seen.dirs.append((str(directory), start, time.monotonic()))

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "pwritev", pwritev)
    monkeypatch.setattr(store_module, "_fsync_dir", fsync_dir)
    if real_syncfs is not None:
        monkeypatch.setattr(store_module, "_SYNCFS", syncfs)
    yield seen


def _send(port: int, subject: str) -> tuple[float, float]:
    """Send one message; the monotonic times its 250 and the 221 to QUIT arrived."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("a@example.org", [BRANDON], f"Subject: {subject}\r\n\r\nx\r\n".encode())
        acked_at = time.monotonic()
    return acked_at, time.monotonic()


def _check(mail_host: MailHost, calls: Calls, acks: dict[str, tuple[float, float]]) -> None:
    stored = {m.read_bytes().split(b"\r\n", 1)[0].decode()[9:]: m for m in _messages(mail_host)}
    for subject, (acked_at, quit_at) in acks.items():
        needle = f"Subject: {subject}\r\n".encode()
        written = [end for data, end in calls.journal_writes if needle in data]
        assert written, f"{subject}: never written to the spool journal"
        assert any(start >= written[0] and end < acked_at for start, end in calls.journal_syncs), (
            f"{subject}: 250 before a fdatasync of the journal after its write had finished"
        )
        message = stored[subject]
        renamed_at = calls.renames[message.key]
        tmp = str(message.path.parent.parent / "tmp" / message.key)
        synced = [end for path, end in calls.data if path in (tmp, "*") and end <= renamed_at]
        assert synced, f"{subject}: renamed into new/ before its data was synced"
        covering = [
            (start, end)
            for directory, start, end in calls.dirs
            if directory == str(message.path.parent) and start >= renamed_at
        ]
        assert covering, f"{subject}: no fsync of new/ after its rename"
        assert min(end for _, end in covering) < quit_at, (
            f"{subject}: QUIT answered before the fsync of new/ that covers its rename finished"
        )


def _messages(mail_host: MailHost) -> list[store_module.StoredMessage]:
    return [
        m for m in mail_host.store.messages("brandon") if m.read_bytes().startswith(b"Subject: t")
    ]


def test_one_client_250_after_the_journal_sync_and_in_new_before_the_quit_reply(
    mail_host: MailHost, calls: Calls
) -> None:
    acks = {f"t{n}": _send(mail_host.port, f"t{n}") for n in range(3)}
    _check(mail_host, calls, acks)
    # alone, each message is its own batch: its own fdatasync, not a whole-disk syncfs
    assert all(path != "*" for path, _ in calls.data)
    assert len(calls.dirs) == 3
    assert len(calls.journal_syncs) == 1 + 3  # the new segment's zeros, then one per message


def test_ten_clients_are_committed_in_groups_and_none_acknowledged_early(
    mail_host: MailHost, calls: Calls
) -> None:
    acks: dict[str, tuple[float, float]] = {}
    barrier = threading.Barrier(10)

    def client(n: int) -> None:
        barrier.wait()
        for round_ in range(3):
            subject = f"t{n}-{round_}"
            acked_at = _send(mail_host.port, subject)
            with calls.lock:
                acks[subject] = acked_at

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(acks) == 30
    _check(mail_host, calls, acks)
    assert len(calls.dirs) < 30, "every delivery synced new/ on its own: no group commit"
    assert len(calls.journal_syncs) < 30, "every message synced the journal alone: no group"


def test_a_failing_journal_sync_is_a_451_and_the_client_is_never_told_250(
    mail_host: MailHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fdatasync

    def broken(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".wal"):
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", broken)
    with (
        smtplib.SMTP("127.0.0.1", mail_host.port, timeout=30) as client,
        pytest.raises(smtplib.SMTPDataError) as caught,
    ):
        client.sendmail("a@example.org", [BRANDON], b"Subject: t-broken\r\n\r\nx\r\n")
    assert caught.value.smtp_code == 451


def test_a_failing_maildir_after_the_250_keeps_the_message_for_the_next_start(
    mail_host: MailHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledged is kept: a Maildir that refuses after the 250 leaves the message in the
    journal, and the next store opened on the root delivers it (here: once the disk works)."""

    def broken(directory: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store_module, "_fsync_dir", broken)
    message = b"Subject: t-later\r\n\r\nkept\r\n"
    with smtplib.SMTP("127.0.0.1", mail_host.port, timeout=30) as client:
        assert client.sendmail("a@example.org", [BRANDON], message) == {}
    monkeypatch.undo()
    # the failed copy may be in new/ (renamed, its directory sync failed): not known durable
    for stored in mail_host.store.messages("brandon"):
        if stored.read_bytes() == message:
            stored.path.unlink()
    # this process's journal is still open (its lock held): a new process recovers it only
    # when this one is gone; here the segment is copied to stand in for a dead writer's
    spool = mail_host.store.root / ".spool"
    (segment,) = spool.glob("*.wal")
    (spool / "dead-writer.wal").write_bytes(segment.read_bytes())
    again = store_module.MailStore(mail_host.store.root)
    assert [m.read_bytes() for m in again.messages("brandon")].count(message) == 1
    assert not (spool / "dead-writer.wal").exists()
