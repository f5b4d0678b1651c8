"""Our POP3 server driven by the stdlib's poplib (an independent client), over real sockets."""

from __future__ import annotations

import contextlib
import logging
import poplib
import socket
import ssl
import time

import pytest

from tests.pop.conftest import PopHost
from wirelab.mail.seed import seed_messages

HOST = "127.0.0.1"


def _tls(host: PopHost) -> poplib.POP3_SSL:
    return poplib.POP3_SSL(HOST, host.tls_port, context=host.context(), timeout=10)


def _seeded_count(host: PopHost) -> int:
    return len(host.store.messages("brandon"))


def test_implicit_tls_user_pass_stat_like_the_book(pop_host: PopHost) -> None:
    client = _tls(pop_host)
    try:
        assert b"<" in client.getwelcome()
        client.user("brandon")
        client.pass_("abc123")
        count, size = client.stat()
        messages = pop_host.store.messages("brandon")
        assert count == len(messages) == len(seed_messages())
        assert size == sum(m.size for m in messages)
    finally:
        client.quit()


def test_retr_is_byte_identical(pop_host: PopHost) -> None:
    client = _tls(pop_host)
    try:
        client.apop("brandon", "abc123")
        for number, message in enumerate(pop_host.store.messages("brandon"), 1):
            response, lines, _octets = client.retr(number)
            assert b"\r\n".join(lines) + b"\r\n" == message.read_bytes()
            assert response.startswith(b"+OK")
    finally:
        client.quit()


def test_stls_then_login_and_capa(pop_host: PopHost) -> None:
    client = poplib.POP3(HOST, pop_host.port, timeout=10)
    try:
        caps = client.capa()
        assert "STLS" in caps and "USER" not in caps
        with pytest.raises(poplib.error_proto, match="AUTH"):
            client.user("brandon")
        client.stls(context=pop_host.context())
        caps = client.capa()
        assert "USER" in caps and "STLS" not in caps and "UIDL" in caps and "TOP" in caps
        client.user("brandon")
        client.pass_("abc123")
        assert client.stat()[0] == _seeded_count(pop_host)
    finally:
        client.quit()


def test_stls_verification_fails_with_wrong_name(pop_host: PopHost) -> None:
    client = poplib.POP3(HOST, pop_host.port, timeout=10)
    client.host = "not-the-mail-host.example.org"
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.stls(context=pop_host.context())
    finally:
        with contextlib.suppress(OSError):
            client.close()


def test_apop_in_plain_text_and_wrong_digest(pop_host: PopHost) -> None:
    client = poplib.POP3(HOST, pop_host.port, timeout=10)
    try:
        with pytest.raises(poplib.error_proto, match="AUTH"):
            client.apop("brandon", "wrong")
        client.apop("brandon", "abc123")
        assert client.stat()[0] == _seeded_count(pop_host)
    finally:
        client.quit()


def test_uidl_top_and_list(pop_host: PopHost) -> None:
    client = _tls(pop_host)
    try:
        client.apop("brandon", "abc123")
        messages = pop_host.store.messages("brandon")
        _, uids, _ = client.uidl()
        assert [u.split()[1].decode() for u in uids] == [m.key for m in messages]
        _, listing, _ = client.list()
        assert [int(x.split()[1]) for x in listing] == [m.size for m in messages]
        _, lines, _ = client.top(1, 0)
        head = messages[0].read_bytes().split(b"\r\n\r\n", 1)[0]
        assert b"\r\n".join(lines) == head + b"\r\n"
    finally:
        client.quit()


def test_deletions_happen_only_at_quit(pop_host: PopHost) -> None:
    before = _seeded_count(pop_host)
    client = _tls(pop_host)
    client.apop("brandon", "abc123")
    client.dele(1)
    client.dele(2)
    assert _seeded_count(pop_host) == before  # marked, not gone
    client.quit()
    assert _seeded_count(pop_host) == before - 2


def test_a_dropped_connection_deletes_nothing(pop_host: PopHost) -> None:
    before = _seeded_count(pop_host)
    client = _tls(pop_host)
    client.apop("brandon", "abc123")
    client.dele(1)
    client.close()  # no QUIT
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the lock goes with the session
        again = _tls(pop_host)
        try:
            again.apop("brandon", "abc123")
            break
        except poplib.error_proto:
            time.sleep(0.05)
        finally:
            again.close()
    assert _seeded_count(pop_host) == before


def test_client_killed_mid_retr_leaves_store_intact(pop_host: PopHost) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" * 1
    pop_host.store.deliver("brandon", big * 1)
    pop_host.store.deliver("brandon", b"Subject: big\r\n\r\n" + (b"y" * 900 + b"\r\n") * 4000)
    before = sorted(m.key for m in pop_host.store.messages("brandon"))
    with socket.create_connection((HOST, pop_host.port), timeout=10) as sock:
        sock.recv(512)
        sock.sendall(b"APOP brandon 0\r\n")
        sock.recv(512)
    client = _tls(pop_host)
    client.apop("brandon", "abc123")
    client.dele(len(before))
    client._putcmd(f"RETR {len(before)}")  # and vanish mid-transfer
    client.sock.close()
    with contextlib.suppress(OSError):
        client.close()
    time.sleep(0.2)
    assert sorted(m.key for m in pop_host.store.messages("brandon")) == before


def test_second_session_for_a_maildrop_is_refused_with_the_lock(make_pop_host: object) -> None:
    pop_host = make_pop_host(exclusive_lock=True)  # type: ignore[operator]
    first = _tls(pop_host)
    first.apop("brandon", "abc123")
    second = _tls(pop_host)
    try:
        with pytest.raises(poplib.error_proto, match="IN-USE"):
            second.apop("brandon", "abc123")
    finally:
        second.close()
        first.quit()


def test_three_bad_logins_close(pop_host: PopHost) -> None:
    client = _tls(pop_host)
    try:
        for _ in range(2):
            with pytest.raises(poplib.error_proto):
                client.apop("brandon", "nope")
        with pytest.raises(poplib.error_proto, match="goodbye"):
            client.apop("brandon", "nope")
        with pytest.raises((poplib.error_proto, OSError, EOFError)):
            client.noop()
    finally:
        client.close()


def test_passwords_never_logged(pop_host: PopHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wirelab.pop")
    client = _tls(pop_host)
    with pytest.raises(poplib.error_proto):
        client.user("brandon")
        client.pass_("S3cret-nobody-knows")
    client.user("brandon")
    client.pass_("abc123")
    client.quit()
    time.sleep(0.1)
    assert "brandon" in caplog.text
    assert "S3cret-nobody-knows" not in caplog.text and "abc123" not in caplog.text


def test_bad_input_gets_err_and_others_are_served(pop_host: PopHost) -> None:
    with socket.create_connection((HOST, pop_host.port), timeout=10) as sock:
        file = sock.makefile("rb")
        assert file.readline().startswith(b"+OK")
        sock.sendall(b"\xff\xfe\x00\r\n" + b"A" * 10_000 + b"\r\nBOGUS\r\nSTAT\r\n")
        replies = [file.readline() for _ in range(4)]
        assert all(r.startswith(b"-ERR") for r in replies)
        file.close()
    client = _tls(pop_host)
    client.apop("brandon", "abc123")
    client.quit()


def test_commands_pipelined_before_stls_are_discarded(pop_host: PopHost) -> None:
    with socket.create_connection((HOST, pop_host.port), timeout=10) as sock:
        file = sock.makefile("rb")
        file.readline()
        sock.sendall(b"STLS\r\nUSER brandon\r\n")
        assert file.readline().startswith(b"+OK")
        assert file.read() == b""  # closed rather than carry plaintext into TLS
        file.close()


def test_connection_cap_and_idle_timeout(make_pop_host: object) -> None:
    host = make_pop_host(max_connections=1, idle_timeout=0.5, evict_idlest=False)  # type: ignore[operator]
    first = socket.create_connection((HOST, host.port), timeout=10)
    try:
        assert first.recv(512).startswith(b"+OK")
        with socket.create_connection((HOST, host.port), timeout=10) as second:
            assert second.recv(512).startswith(b"-ERR [SYS/TEMP]")
        start = time.monotonic()
        assert first.recv(512) == b""  # idle: closed by the server
        assert time.monotonic() - start < 5
    finally:
        first.close()


def test_eight_bit_mail_round_trips(pop_host: PopHost) -> None:
    data = (
        "Subject: caf\u00e9\r\nContent-Type: text/plain; charset=latin-1\r\n"
        "\r\nd\u00e9j\u00e0 vu\r\n"
    )
    pop_host.store.deliver("brandon", data.encode("latin-1"))
    client = _tls(pop_host)
    try:
        client.apop("brandon", "abc123")
        count = client.stat()[0]
        _, lines, _ = client.retr(count)
        assert b"\r\n".join(lines) + b"\r\n" == data.encode("latin-1")
    finally:
        client.quit()


def test_a_full_server_closes_the_idlest_for_a_newcomer(make_pop_host: object) -> None:
    host = make_pop_host(max_connections=2)  # type: ignore[operator]
    slow = [socket.create_connection((HOST, host.port), timeout=10) for _ in range(2)]
    try:
        for sock in slow:
            assert sock.recv(512).startswith(b"+OK")
        time.sleep(0.6)
        client = poplib.POP3(HOST, host.port, timeout=10)
        assert client.getwelcome().startswith(b"+OK")
        client.quit()
    finally:
        for sock in slow:
            sock.close()
