"""The spool journal (decision 0122): its records, a torn tail, recovery, limits, settling."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wirelab.mail.spool import (
    Spool,
    SpoolFull,
    encode_checkpoint,
    encode_message,
    parse_segment,
)
from wirelab.mail.store import MailStore


def _record(seq: int, name: str, data: bytes, users: tuple[str, ...] = ("brandon",)) -> bytes:
    return b"".join(encode_message(seq, name, users, data))


def test_records_round_trip_and_every_torn_tail_is_ignored() -> None:
    first = _record(1, "1.M1P1Q1.h,S=5", b"one\r\n", ("alice", "brandon"))
    done = encode_checkpoint([1])
    last = _record(2, "1.M2P1Q2.h,S=5", b"two\r\n")
    raw = first + done + last
    messages, checkpointed, valid = parse_segment(raw)
    assert [(m.seq, m.name, m.users, m.data) for m in messages] == [
        (1, "1.M1P1Q1.h,S=5", ("alice", "brandon"), b"one\r\n"),
        (2, "1.M2P1Q2.h,S=5", ("brandon",), b"two\r\n"),
    ]
    assert checkpointed == {1} and valid == len(raw)
    # the writer died at any byte of the last record: that record is not there, the rest is
    for cut in range(len(first + done), len(raw)):
        messages, checkpointed, valid = parse_segment(raw[:cut])
        assert [m.seq for m in messages] == [1] and valid == len(first + done)
    # a flipped bit anywhere in the last record (a sector half written) fails its checksum
    for at in range(len(first + done), len(raw)):
        damaged = bytearray(raw)
        damaged[at] ^= 0x10
        assert [m.seq for m in parse_segment(bytes(damaged))[0]] == [1]


def _dead_segment(root: Path, records: bytes) -> Path:
    spool = root / ".spool"
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / "4242-dead-1.wal"
    path.write_bytes(records)
    return path


def test_recovery_delivers_what_is_not_in_new_or_cur_once_byte_identical(
    tmp_path: Path,
) -> None:
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    base = store.maildir("brandon")
    (base / "new" / "1.M2P9Q2.h,S=4").write_bytes(b"two\r\n")  # renamed before the crash
    (base / "cur" / "1.M3P9Q3.h,S=6:2,S").write_bytes(b"three\r\n")  # and read since
    (base / "tmp" / "1.M4P9Q4.h,S=5").write_bytes(b"fo")  # half written when it died
    segment = _dead_segment(
        store.root,
        _record(1, "1.M1P9Q1.h,S=5", b"one\r\n")  # delivered and checkpointed
        + _record(2, "1.M2P9Q2.h,S=4", b"two\r\n")
        + _record(3, "1.M3P9Q3.h,S=6", b"three\r\n")
        + _record(4, "1.M4P9Q4.h,S=5", b"four\r\n")
        + _record(5, "1.M5P9Q5.h,S=5", b"five\r\n")
        + encode_checkpoint([1])
        + _record(6, "1.M6P9Q6.h,S=3", b"six\r\n")[:-3],  # torn: never acknowledged
    )
    reopened = MailStore(store.root)
    found = {m.key: m.read_bytes() for m in reopened.messages("brandon")}
    assert found == {
        "1.M2P9Q2.h,S=4": b"two\r\n",
        "1.M3P9Q3.h,S=6": b"three\r\n",
        "1.M4P9Q4.h,S=5": b"four\r\n",
        "1.M5P9Q5.h,S=5": b"five\r\n",
    }
    assert not segment.exists() and os.listdir(base / "tmp") == []
    MailStore(store.root)  # nothing left to do
    assert len(reopened.messages("brandon")) == 4


def test_a_live_writers_segment_is_left_alone_until_it_dies(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    store = MailStore(root)
    store.add_account("brandon", "abc123")
    code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from wirelab.mail.spool import Spool
        spool = Spool(Path(sys.argv[1]) / ".spool")
        placed = spool.append([("7.M1P1Q1.h,S=6", ("brandon",), b"live\\r\\n")])
        spool.sync(placed[0][0])
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert MailStore(root).messages("brandon") == []  # its flock is held: not ours
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert [m.read_bytes() for m in MailStore(root).messages("brandon")] == [b"live\r\n"]


def test_a_full_spool_refuses_and_writes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / ".spool", limit=4096)
    placed = spool.append([("a", ("brandon",), b"x" * 1000)])
    spool.sync(placed[0][0])
    with pytest.raises(SpoolFull):
        spool.append([("b", ("brandon",), b"x" * 4000)])
    (segment,) = (tmp_path / ".spool").glob("*.wal")
    assert [m.name for m in parse_segment(segment.read_bytes())[0]] == ["a"]
    spool.checkpoint(placed[0][0], [placed[0][1]])
    spool.close()
    assert not list((tmp_path / ".spool").glob("*.wal"))  # all delivered: removed


def test_segments_rotate_and_delivered_ones_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / ".spool", segment_bytes=2000)
    placed = [spool.append([(f"m{n}", ("brandon",), b"y" * 1000)])[0] for n in range(6)]
    assert len({id(segment) for segment, _ in placed}) == 3
    for segment, seq in placed[:4]:
        spool.checkpoint(segment, [seq])
    assert len(list((tmp_path / ".spool").glob("*.wal"))) == 1  # the first two went
    assert spool.settle(0) is False
    for segment, seq in placed[4:]:
        spool.checkpoint(segment, [seq])
    assert spool.settle(1)
    spool.close()
    assert not list((tmp_path / ".spool").glob("*.wal"))


def test_accept_then_settle_the_message_is_in_new(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail")
    store.add_account("brandon", "abc123")
    store.add_account("alice", "abc123")
    data = b"Subject: both\r\n\r\nx\r\n"
    visible = asyncio.run(store.accept_async(["alice", "brandon"], data))
    store.settle(10)
    assert all(future.done() for future in visible)
    assert [m.read_bytes() for m in store.messages("alice")] == [data]
    assert [m.read_bytes() for m in store.messages("brandon")] == [data]
    assert visible[0].result().key == visible[1].result().key  # one name, from the journal
    store.close_spool()
    assert not list((store.root / ".spool").glob("*.wal"))
