"""The IMAP server's cached folder view (decision 0140) misses no change and rescans no idle folder.

Every change another program makes to a Maildir (SMTP delivering into ``new/``, POP3 deleting
at QUIT, another IMAP session renaming a file for its flags) must reach a selected session
at its next command (NOOP) or while it IDLEs, exactly as when pymap rebuilt the folder on
every command; and an unchanged folder must not be scanned again.
"""

from __future__ import annotations

import imaplib
import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.imap.conftest import ImapHost
from wirelab.imap import _folder

HOST = "127.0.0.1"


def _tls(host: ImapHost) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(HOST, host.tls_port, ssl_context=host.context(), timeout=10)
    client.login("brandon", "abc123")
    return client


def _message(n: int, size: int = 300) -> bytes:
    head = f"From: cache@example.com\r\nSubject: cache test {n}\r\n\r\n".encode()
    return head + b"y" * max(0, size - len(head) - 2) + b"\r\n"


def _untagged(client: imaplib.IMAP4, kind: str) -> list[bytes]:
    """The untagged responses of ``kind`` the last commands brought (and forget them)."""
    return [item for item in client.untagged_responses.pop(kind, []) if item is not None]


def _body(client: imaplib.IMAP4, which: str) -> bytes:
    """``BODY.PEEK[]`` of message ``which`` (only this FETCH's answer, not earlier ones)."""
    client.untagged_responses.pop("FETCH", None)
    _typ, data = client.fetch(which, "(BODY.PEEK[])")
    bodies = [item[1] for item in data if isinstance(item, tuple)]
    assert len(bodies) == 1, data
    return bodies[0]


def _exists(client: imaplib.IMAP4) -> int:
    client.noop()
    found = _untagged(client, "EXISTS")
    assert found, "no EXISTS after a change"
    return int(found[-1])


@pytest.fixture
def selected(imap_host: ImapHost) -> Iterator[imaplib.IMAP4_SSL]:
    client = _tls(imap_host)
    client.select("INBOX")
    yield client
    client.logout()


def test_delivery_while_selected_shows_up_at_noop(
    imap_host: ImapHost, selected: imaplib.IMAP4_SSL
) -> None:
    before = int(selected.select("INBOX")[1][0])
    data = _message(1)
    imap_host.store.deliver("brandon", data)
    assert _exists(selected) == before + 1
    assert _body(selected, str(before + 1)) == data


def test_deliveries_in_the_same_clock_tick_are_all_seen(
    imap_host: ImapHost, selected: imaplib.IMAP4_SSL
) -> None:
    """File times are coarse: a delivery right after a scan, in the same tick, still counts."""
    count = int(selected.select("INBOX")[1][0])
    for n in range(25):
        imap_host.store.deliver("brandon", _message(n))
        count += 1
        assert _exists(selected) == count
    # and two at once, between two commands
    imap_host.store.deliver("brandon", _message(100))
    imap_host.store.deliver("brandon", _message(101))
    assert _exists(selected) == count + 2


def test_delivery_during_idle_is_announced(imap_host: ImapHost) -> None:
    client = _tls(imap_host)
    try:
        count = int(client.select("INBOX")[1][0])
        sock = client.sock
        sock.sendall(b"i1 IDLE\r\n")
        assert client.readline().startswith(b"+")
        imap_host.store.deliver("brandon", _message(7))
        sock.settimeout(5)
        announced = b""
        deadline = time.monotonic() + 5
        while b"EXISTS" not in announced and time.monotonic() < deadline:
            announced += client.readline()
        assert f"* {count + 1} EXISTS".encode() in announced
        sock.sendall(b"DONE\r\n")
        while not (line := client.readline()).startswith(b"i1 "):
            assert line.startswith(b"* "), line
        assert line.startswith(b"i1 OK")
    finally:
        client.logout()


def test_flags_set_by_another_session_are_seen(
    imap_host: ImapHost, selected: imaplib.IMAP4_SSL
) -> None:
    other = _tls(imap_host)
    try:
        other.select("INBOX")
        assert other.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
    finally:
        other.logout()
    selected.noop()
    flags = b" ".join(_untagged(selected, "FETCH"))
    assert re.search(rb"1 \(FLAGS \([^)]*\\Flagged", flags), flags


def test_a_pop3_style_deletion_is_an_expunge(
    imap_host: ImapHost, selected: imaplib.IMAP4_SSL
) -> None:
    count = int(selected.select("INBOX")[1][0])
    victim = imap_host.store.messages("brandon")[-1]
    victim.path.unlink()
    selected.noop()
    assert len(_untagged(selected, "EXPUNGE")) == 1
    assert int(selected.select("INBOX")[1][0]) == count - 1


def test_own_writes_fetch_sets_seen_store_and_expunge(imap_host: ImapHost) -> None:
    client = _tls(imap_host)
    try:
        count = int(client.select("INBOX")[1][0])
        client.fetch("1", "(BODY[])")  # not PEEK: sets \Seen
        _typ, flags = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" in flags[0]  # type: ignore[operator]
        client.store("2", "+FLAGS", "(\\Deleted)")
        client.expunge()
        assert int(client.select("INBOX")[1][0]) == count - 1
        _typ, flags = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" in flags[0]  # type: ignore[operator]
    finally:
        client.logout()
    assert len(imap_host.store.messages("brandon")) == count - 1


def test_append_and_copy_keep_the_bytes(imap_host: ImapHost) -> None:
    client = _tls(imap_host)
    data = _message(9, 2000)
    try:
        client.create("Archive")
        assert client.append("INBOX", "", imaplib.Time2Internaldate(time.time()), data)[0] == "OK"
        count = int(client.select("INBOX")[1][0])
        assert _body(client, str(count)) == data
        assert client.copy(str(count), "Archive")[0] == "OK"
        assert client.select("Archive", readonly=True)[1] == [b"1"]
        assert _body(client, "1") == data
    finally:
        client.logout()


def test_an_unchanged_folder_is_not_scanned_again(
    imap_host: ImapHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(200):
        imap_host.store.deliver("brandon", _message(n))
    scans: list[int] = []
    real_scan = _folder.CachedMailboxData._scan

    async def counted(self: _folder.CachedMailboxData) -> None:
        scans.append(1)
        await real_scan(self)

    monkeypatch.setattr(_folder.CachedMailboxData, "_scan", counted)
    client = _tls(imap_host)
    try:
        count = int(client.select("INBOX", readonly=True)[1][0])
        assert scans, "SELECT builds the view"
        time.sleep(3 * _folder.RACY)  # past the window where a fresh stamp is not trusted
        client.noop()
        scans.clear()
        for n in range(1, count + 1, 5):
            assert _body(client, str(n))
        client.noop()
        assert scans == []
        imap_host.store.deliver("brandon", _message(999))
        assert _exists(client) == count + 1
        assert scans, "a delivery makes the next command scan"
    finally:
        client.logout()


def test_literal_fetch_of_many_large_messages_streams(imap_host: ImapHost) -> None:
    """``FETCH 1:*`` of large messages is sent as it is produced: a slow reader gets it all."""
    big = [_message(n, 600_000) for n in range(4)]
    for data in big:
        imap_host.store.deliver("brandon", data)
    client = _tls(imap_host)
    try:
        count = int(client.select("INBOX", readonly=True)[1][0])
        client.untagged_responses.pop("FETCH", None)
        _typ, fetched = client.fetch(f"{count - 3}:{count}", "(BODY.PEEK[])")
        bodies = [item[1] for item in fetched if isinstance(item, tuple)]
        assert bodies == big  # in delivery order: UIDs follow arrival
    finally:
        client.logout()


def test_no_delay_on_the_connection(imap_host: ImapHost) -> None:
    """Each response leaves at once: 30 FETCHes take far less than 30 delayed ACKs (40 ms)."""
    client = _tls(imap_host)
    try:
        client.select("INBOX", readonly=True)
        client.fetch("1", "(BODY.PEEK[])")
        best = min(_timed_fetch(client) for _ in range(30))
        assert best < 0.035, f"the fastest FETCH took {best * 1000:.0f} ms"
    finally:
        client.logout()


def _timed_fetch(client: imaplib.IMAP4_SSL) -> float:
    start = time.perf_counter()
    client.fetch("1", "(BODY.PEEK[])")
    return time.perf_counter() - start


def test_plain_socket_sees_one_write_per_small_response(imap_host: ImapHost) -> None:
    """A small FETCH response arrives as one TLS record, not one per piece."""
    context = imap_host.context()
    with (
        socket.create_connection((HOST, imap_host.tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="mail.example.com") as sock,
    ):
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"a LOGIN brandon abc123\r\n")
        while not reader.readline().startswith(b"a "):
            pass
        sock.sendall(b"b EXAMINE INBOX\r\n")
        while not reader.readline().startswith(b"b "):
            pass
        sock.sendall(b"c FETCH 1 (BODY.PEEK[])\r\n")
        time.sleep(0.3)
        first = sock.recv(1 << 20)
        assert first.startswith(b"* 1 FETCH") and first.rstrip().endswith(b"c OK FETCH completed.")
        sock.sendall(b"d LOGOUT\r\n")
