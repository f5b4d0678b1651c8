"""The mail store: durable Maildir delivery, hashed accounts, the seeded mailbox, reset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.seed import reset_mailbox, seed_messages, seed_store
from wirelab.mail.store import MailStore


def test_delivery_lands_in_new_complete_and_tmp_is_empty(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    first = store.deliver("brandon", b"Subject: one\r\n\r\n1\r\n")
    second = store.deliver("brandon", b"Subject: two\r\n\r\n2\r\n")
    assert [m.key for m in store.messages("brandon")] == [first.key, second.key]
    assert first.path.parent.name == "new" and first.read_bytes().endswith(b"1\r\n")
    assert first.key.endswith(f",S={first.size}")
    assert not os.listdir(store.maildir("brandon") / "tmp")


def test_a_file_left_in_tmp_is_never_listed(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    (store.maildir("brandon") / "tmp" / "123.partial").write_bytes(b"Subject: half")
    assert store.messages("brandon") == []
    os.utime(store.maildir("brandon") / "tmp" / "123.partial", (0, 0))
    assert store.clean_tmp("brandon") == 1


def test_passwords_are_hashed_never_stored(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    text = (tmp_path / "mail" / "accounts.json").read_text()
    assert "abc123" not in text
    record = json.loads(text)["brandon"]
    assert record["scrypt"].startswith("n=") and len(record["salt"]) >= 20
    assert (tmp_path / "mail" / "accounts.json").stat().st_mode & 0o077 == 0
    assert store.authenticate("brandon", "abc123")
    assert not store.authenticate("brandon", "abc124")
    assert not store.authenticate("nobody", "abc123")


def test_seed_and_reset(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    seed_store(store, LAB_ACCOUNTS)
    messages = store.messages("brandon")
    assert [m.read_bytes() for m in messages] == seed_messages()
    store.deliver("brandon", b"Subject: extra\r\n\r\nx\r\n")
    seed_store(store, LAB_ACCOUNTS)  # a second start does not seed again
    assert len(store.messages("brandon")) == 5
    assert reset_mailbox(store, "brandon") == 4
    assert [m.read_bytes() for m in store.messages("brandon")] == seed_messages()


def test_cli_reset_without_a_lab_uses_the_state_directory(tmp_path: Path) -> None:
    env = {**os.environ, "WIRELAB_HOME": str(tmp_path / "home")}
    done = run_wirelab("mail", "reset", env=env)
    assert done.returncode == 0, done.stderr
    assert "brandon's mailbox has 4 messages again" in done.stdout
    unknown = run_wirelab("mail", "reset", "-u", "mallory", env=env)
    assert unknown.returncode == 1 and "not a lab mail account" in unknown.stderr


def test_concurrent_deliveries_share_directory_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import wirelab.mail.store as store_module

    calls: list[float] = []
    real = store_module._fsync_dir

    def slow_fsync_dir(directory: Path) -> None:
        calls.append(time.monotonic())
        time.sleep(0.02)  # a slow disk, so deliveries pile up behind one sync
        real(directory)

    monkeypatch.setattr(store_module, "_fsync_dir", slow_fsync_dir)
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    barrier = threading.Barrier(16)

    def deliver(n: int) -> None:
        barrier.wait()
        store.deliver("brandon", f"Subject: {n}\r\n\r\n{n}\r\n".encode())

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(store.messages("brandon")) == 16
    assert 1 <= len(calls) < 16  # grouped: fewer directory syncs than deliveries


def test_concurrent_seeding_writes_accounts_and_seeds_once(tmp_path: Path) -> None:
    """SMTP, POP3 and IMAP open the store at once when a lab starts."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from wirelab.config import LAB_ACCOUNTS;"
        "from wirelab.mail.seed import seed_store; from wirelab.mail.store import MailStore;"
        "seed_store(MailStore(Path(sys.argv[1])), LAB_ACCOUNTS)"
    )
    root = tmp_path / "mail"
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(root)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 4, errors
    store = MailStore(root)
    assert store.users() == ["brandon"] and store.authenticate("brandon", "abc123")
    assert [m.read_bytes() for m in store.messages("brandon")] == seed_messages()


def test_delivery_remakes_a_maildir_removed_under_the_store(tmp_path: Path) -> None:
    import shutil

    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    store.deliver("brandon", b"Subject: one\r\n\r\n1\r\n")
    shutil.rmtree(tmp_path / "mail" / "users" / "brandon")  # an operator's cleanup
    again = store.deliver("brandon", b"Subject: two\r\n\r\n2\r\n")
    assert [m.key for m in store.messages("brandon")] == [again.key]


def test_deliver_async_to_several_mailboxes_and_a_refusing_disk(tmp_path: Path) -> None:
    import asyncio

    from wirelab.errors import WirelabError

    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    store.add_account("alice", "abc123")
    stored = asyncio.run(store.deliver_async(["alice", "brandon"], b"Subject: both\r\n\r\nx\r\n"))
    assert [m.path.parent.parent.parent.name for m in stored] == ["alice", "brandon"]
    assert all(m.read_bytes() == b"Subject: both\r\n\r\nx\r\n" for m in stored)
    tmp = store.maildir("alice") / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")  # tmp/ is not a directory: the disk refuses, even for root
    with pytest.raises(WirelabError, match="cannot store the message: Not a directory"):
        store.deliver("alice", b"Subject: no\r\n\r\nx\r\n")
    assert store.deliver("brandon", b"Subject: still\r\n\r\nx\r\n").folder == "new"
