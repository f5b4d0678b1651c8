"""A 250 only after the message's data and its directory entry are on disk.

kill -9 cannot prove this (the page cache survives a killed process; only a power cut loses
it), so these tests watch the order of the store's system calls in the server's process and
compare it with the moment a real client got its 250:

* the message's data was synced (its own ``fdatasync``, or a ``syncfs`` of the batch) before
  it was renamed into ``new/``;
* a ``fsync`` of ``new/`` *started after* that rename and *ended before* the client saw 250.

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
    renames: dict[str, float] = field(default_factory=dict)  # key -> time
    dirs: list[tuple[str, float, float]] = field(default_factory=list)  # (dir, start, end)

    def ours(self, path: str) -> bool:
        return path.startswith(str(self.root))


@pytest.fixture
def calls(mail_host: MailHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    seen = Calls(mail_host.store.root.resolve())
    real_fdatasync, real_rename = os.fdatasync, os.rename
    real_fsync_dir, real_syncfs = store_module._fsync_dir, store_module._SYNCFS

    def fdatasync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        time.sleep(SLOW)
        real_fdatasync(fd)
        if seen.ours(path):
            with seen.lock:
                seen.data.append((path, time.monotonic()))

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
    monkeypatch.setattr(store_module, "_fsync_dir", fsync_dir)
    if real_syncfs is not None:
        monkeypatch.setattr(store_module, "_SYNCFS", syncfs)
    yield seen


def _send(port: int, subject: str) -> float:
    """Send one message; the monotonic time its 250 arrived."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("a@example.org", [BRANDON], f"Subject: {subject}\r\n\r\nx\r\n".encode())
        return time.monotonic()


def _check(mail_host: MailHost, calls: Calls, acks: dict[str, float]) -> None:
    stored = {m.read_bytes().split(b"\r\n", 1)[0].decode()[9:]: m for m in _messages(mail_host)}
    for subject, acked_at in acks.items():
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
        assert min(end for _, end in covering) < acked_at, (
            f"{subject}: 250 before the fsync of new/ that covers its rename had finished"
        )


def _messages(mail_host: MailHost) -> list[store_module.StoredMessage]:
    return [
        m for m in mail_host.store.messages("brandon") if m.read_bytes().startswith(b"Subject: t")
    ]


def test_one_client_250_after_fdatasync_rename_and_directory_fsync(
    mail_host: MailHost, calls: Calls
) -> None:
    acks = {f"t{n}": _send(mail_host.port, f"t{n}") for n in range(3)}
    _check(mail_host, calls, acks)
    # alone, each message is its own batch: its own fdatasync, not a whole-disk syncfs
    assert all(path != "*" for path, _ in calls.data)
    assert len(calls.dirs) == 3


def test_ten_clients_are_committed_in_groups_and_none_acknowledged_early(
    mail_host: MailHost, calls: Calls
) -> None:
    acks: dict[str, float] = {}
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


def test_a_failing_sync_is_a_451_and_the_client_is_never_told_250(
    mail_host: MailHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(directory: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store_module, "_fsync_dir", broken)
    with (
        smtplib.SMTP("127.0.0.1", mail_host.port, timeout=30) as client,
        pytest.raises(smtplib.SMTPDataError) as caught,
    ):
        client.sendmail("a@example.org", [BRANDON], b"Subject: t-broken\r\n\r\nx\r\n")
    assert caught.value.smtp_code == 451
