"""Our IMAP server (pymap over the store) driven by the stdlib's imaplib."""

from __future__ import annotations

import email
import imaplib
import logging
import socket
import time

import pytest

from tests.imap.conftest import ImapHost
from wirelab.mail.seed import NESTED_SUBJECT

HOST = "127.0.0.1"


def _tls(host: ImapHost) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(HOST, host.tls_port, ssl_context=host.context(), timeout=10)
    client.login("brandon", "abc123")
    return client


def _by_message_id(host: ImapHost) -> dict[str, bytes]:
    found = {}
    for message in host.store.messages("brandon"):
        data = message.read_bytes()
        found[email.message_from_bytes(data)["Message-ID"]] = data
    return found


def test_login_refused_before_starttls_then_accepted(imap_host: ImapHost) -> None:
    client = imaplib.IMAP4(HOST, imap_host.port, timeout=10)
    try:
        assert "LOGINDISABLED" in client.capabilities and "STARTTLS" in client.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            client.login("brandon", "abc123")
        client.starttls(ssl_context=imap_host.context())
        assert client.login("brandon", "abc123")[0] == "OK"
        assert client.select("INBOX", readonly=True) == ("OK", [b"4"])
    finally:
        client.logout()


def test_wrong_password_is_refused(imap_host: ImapHost) -> None:
    client = imaplib.IMAP4_SSL(HOST, imap_host.tls_port, ssl_context=imap_host.context())
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login("brandon", "wrong")
    finally:
        client.logout()


def test_body_peek_is_byte_identical_and_leaves_unseen(imap_host: ImapHost) -> None:
    stored = _by_message_id(imap_host)
    client = _tls(imap_host)
    try:
        client.select("INBOX")
        _typ, data = client.fetch("1:*", "(BODY.PEEK[] FLAGS)")
        bodies = [item[1] for item in data if isinstance(item, tuple)]
        assert sorted(bodies) == sorted(stored.values())
        _, flags = client.fetch("1:*", "(FLAGS)")
        assert all(b"\\Seen" not in f for f in flags)
        client.fetch("1", "(BODY[])")  # a non-PEEK fetch does set it
        _, flags = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" in flags[0]
    finally:
        client.logout()


def test_metadata_and_bodystructure(imap_host: ImapHost) -> None:
    client = _tls(imap_host)
    try:
        client.select("INBOX", readonly=True)
        assert client.response("UIDVALIDITY")[1][0]
        typ, data = client.uid("FETCH", "1:*", "(INTERNALDATE RFC822.SIZE BODYSTRUCTURE)")
        assert typ == "OK"
        text = b" ".join(d if isinstance(d, bytes) else d[0] for d in data)
        assert b"INTERNALDATE" in text and b'"related"' in text and b'"rfc822"' in text
        typ, data = client.search(None, "SUBJECT", '"crashed"')
        assert typ == "OK" and data[0]
        _, head = client.fetch(data[0].split()[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert NESTED_SUBJECT.encode()[:20] in head[0][1]
    finally:
        client.logout()


def test_literal_over_the_limit_refused_before_it_is_read(
    make_imap_host: object,
) -> None:
    host = make_imap_host(max_literal=1000)  # type: ignore[operator]
    with socket.create_connection((HOST, host.port), timeout=10) as sock:
        file = sock.makefile("rb")
        assert file.readline().startswith(b"* OK")
        sock.sendall(b"a1 LOGIN {100000000+}\r\n")  # 100 MB announced, none sent
        start = time.monotonic()
        answer = file.read()
        assert b"BYE" in answer and time.monotonic() - start < 5
        file.close()


def test_synchronizing_literal_over_the_limit_gets_no_continuation(
    make_imap_host: object,
) -> None:
    host = make_imap_host(max_literal=1000)  # type: ignore[operator]
    with socket.create_connection((HOST, host.port), timeout=10) as sock:
        file = sock.makefile("rb")
        file.readline()
        sock.sendall(b"a1 LOGIN {5000}\r\n")
        line = file.readline()
        assert not line.startswith(b"+"), line
        file.close()


def test_connection_cap_closes_the_idlest_for_a_newcomer(make_imap_host: object) -> None:
    host = make_imap_host(max_connections=1)  # type: ignore[operator]
    with socket.create_connection((HOST, host.port), timeout=10) as first:
        assert first.recv(512).startswith(b"* OK")
        time.sleep(0.6)
        with socket.create_connection((HOST, host.port), timeout=10) as second:
            assert second.recv(512).startswith(b"* OK")
            rest = b""
            while chunk := first.recv(512):  # the idlest is closed (a BYE, then the end)
                rest += chunk
            assert rest in (b"",) or rest.startswith(b"* BYE")


def test_idle_timeout(make_imap_host: object) -> None:
    host = make_imap_host(idle_timeout=0.5)  # type: ignore[operator]
    with socket.create_connection((HOST, host.port), timeout=10) as sock:
        sock.recv(512)
        start = time.monotonic()
        while sock.recv(512):
            pass
        assert time.monotonic() - start < 5


def test_client_killed_mid_fetch_leaves_the_store(imap_host: ImapHost) -> None:
    imap_host.store.deliver("brandon", b"Subject: big\r\n\r\n" + (b"z" * 900 + b"\r\n") * 3000)
    before = sorted(m.key for m in imap_host.store.messages("brandon"))
    client = _tls(imap_host)
    client.select("INBOX")
    client.send(b"x1 FETCH 1:* (BODY.PEEK[])\r\n")
    client.sock.close()
    time.sleep(0.3)
    assert sorted(m.key for m in imap_host.store.messages("brandon")) == before
    again = _tls(imap_host)
    assert again.select("INBOX", readonly=True)[1] == [str(len(before)).encode()]
    again.logout()


def test_passwords_never_logged(imap_host: ImapHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = imaplib.IMAP4_SSL(HOST, imap_host.tls_port, ssl_context=imap_host.context())
    with pytest.raises(imaplib.IMAP4.error):
        client.login("brandon", "S3cret-nobody-knows")
    client.login("brandon", "abc123")
    client.logout()
    time.sleep(0.1)
    assert "S3cret-nobody-knows" not in caplog.text and "abc123" not in caplog.text
