"""The lab SMTP server against independent clients: smtplib with an explicit context, and raw
sockets for what no polite client sends (smuggling, pipelined STARTTLS, oversized lines)."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable

import pytest

from tests.smtp.conftest import MailHost

BRANDON = "brandon@example.com"


class Raw:
    """A raw SMTP peer: send bytes, read one (multi-line) reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline(2000)
            if not line:
                return 0, "closed"
            lines.append(line.decode("ascii", "replace").rstrip())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str) -> tuple[int, str]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw(mail_host: MailHost) -> Callable[[], Raw]:
    opened: list[Raw] = []

    def make() -> Raw:
        peer = Raw(mail_host.port)
        opened.append(peer)
        code, _ = peer.reply()
        assert code == 220
        return peer

    yield make  # type: ignore[misc]
    for peer in opened:
        peer.close()


def _count(host: MailHost) -> int:
    return len(host.store.messages("brandon"))


def _smtp(host: MailHost) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", host.port, timeout=10)
    client._host = "mail.example.com"  # type: ignore[attr-defined]  # the name to verify
    return client


def test_starttls_then_auth_and_delivery_is_byte_identical(mail_host: MailHost) -> None:
    before = _count(mail_host)
    message = b"From: a@example.org\r\nTo: brandon@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
    with _smtp(mail_host) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        client.starttls(context=mail_host.client_context())
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        client.login("brandon", "abc123")
        assert client.sendmail("a@example.org", [BRANDON], message) == {}
    messages = mail_host.store.messages("brandon")
    assert len(messages) == before + 1
    assert messages[-1].read_bytes() == message


def test_auth_before_tls_is_refused_with_the_reason(raw: Callable[[], Raw]) -> None:
    peer = raw()
    code, text = peer.cmd("EHLO test")
    assert code == 250 and "AUTH" not in text and "STARTTLS" in text
    code, text = peer.cmd("AUTH PLAIN AGJyYW5kb24AYWJjMTIz")
    assert code == 538 and "Encryption required" in text


def test_wrong_password_is_refused(mail_host: MailHost) -> None:
    with _smtp(mail_host) as client:
        client.starttls(context=mail_host.client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login("brandon", "wrong")
    assert info.value.smtp_code == 535


def test_relay_to_an_outside_domain_is_refused(mail_host: MailHost) -> None:
    with _smtp(mail_host) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        client.sendmail("a@example.org", ["victim@gmail.com"], b"Subject: x\r\n\r\nx\r\n")
    code, text = info.value.recipients["victim@gmail.com"]
    assert code == 550 and b"Relaying denied" in text


def test_unknown_local_user_is_refused(raw: Callable[[], Raw]) -> None:
    peer = raw()
    peer.cmd("EHLO test")
    assert peer.cmd("MAIL FROM:<a@example.org>")[0] == 250
    code, text = peer.cmd("RCPT TO:<nobody@example.com>")
    assert code == 550 and "No such user" in text


@pytest.mark.parametrize(
    "trick",
    [
        b"\n.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r\n.\r",
        b"\r.\r\n",
        b"\n.\r",
    ],
    ids=[
        "lf-dot-lf",
        "cr-dot-cr",
        "lf-dot-crlf",
        "crlf-dot-lf",
        "crlf-dot-cr",
        "cr-dot-crlf",
        "lf-dot-cr",
    ],
)
def test_smtp_smuggling_end_of_data_variant_is_refused(
    mail_host: MailHost, raw: Callable[[], Raw], trick: bytes
) -> None:
    before = _count(mail_host)
    peer = raw()
    peer.cmd("EHLO test")
    peer.cmd("MAIL FROM:<a@example.org>")
    peer.cmd(f"RCPT TO:<{BRANDON}>")
    assert peer.cmd("DATA")[0] == 354
    smuggled = b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<brandon@example.com>\r\nDATA\r\n"
    peer.send(b"Subject: one\r\n\r\nfirst" + trick + smuggled + b"Subject: two\r\n\r\nx\r\n.\r\n")
    code, text = peer.reply()
    assert code == 550 and "Bare CR or LF" in text
    # the connection is still usable and nothing, neither half, was delivered
    assert peer.cmd("NOOP")[0] == 250
    assert _count(mail_host) == before


def test_starttls_command_injection_is_discarded(mail_host: MailHost) -> None:
    """Commands pipelined after STARTTLS, before the handshake, must not be run (RFC 3207)."""
    sock = socket.create_connection(("127.0.0.1", mail_host.port), timeout=10)
    try:
        file = sock.makefile("rb")
        assert file.readline().startswith(b"220")
        sock.sendall(b"EHLO test\r\n")
        while not file.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        assert file.readline().startswith(b"220")
        tls = mail_host.client_context().wrap_socket(sock, server_hostname="mail.example.com")
        tfile = tls.makefile("rb")
        tls.sendall(b"EHLO again\r\n")
        first = tfile.readline()
        assert first.startswith(b"250"), first  # the EHLO's reply, not MAIL's
        while not first.startswith(b"250 "):
            first = tfile.readline()
        tls.sendall(b"RCPT TO:<brandon@example.com>\r\n")
        # had the injected MAIL FROM run, this would be accepted
        assert tfile.readline().startswith(b"503")
        tfile.close()
        tls.close()
    finally:
        sock.close()


def test_oversized_command_line_is_refused(raw: Callable[[], Raw]) -> None:
    peer = raw()
    peer.cmd("EHLO test")
    code, _ = peer.cmd("NOOP " + "x" * 2000)
    assert code == 500
    assert peer.cmd("NOOP")[0] == 250


def test_oversized_data_line_is_refused(mail_host: MailHost, raw: Callable[[], Raw]) -> None:
    before = _count(mail_host)
    peer = raw()
    peer.cmd("EHLO test")
    peer.cmd("MAIL FROM:<a@example.org>")
    peer.cmd(f"RCPT TO:<{BRANDON}>")
    peer.cmd("DATA")
    peer.send(b"Subject: long\r\n\r\n" + b"y" * 5000 + b"\r\n.\r\n")
    code, text = peer.reply()
    assert code == 500 and "Line too long" in text
    assert _count(mail_host) == before


def test_message_over_size_is_refused(make_mail_host: Callable[..., MailHost]) -> None:
    host = make_mail_host(max_message_bytes=2000)
    before = _count(host)
    with _smtp(host) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "2000"
        # declared too large: refused at MAIL FROM
        code, _ = client.docmd("MAIL FROM:<a@example.org> SIZE=5000")
        assert code == 552
        client.rset()
        # undeclared and too large: refused after DATA
        body = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 60
        assert client.docmd("MAIL FROM:<a@example.org>")[0] == 250
        assert client.docmd(f"RCPT TO:<{BRANDON}>")[0] == 250
        code, _ = client.data(body)
    assert code == 552
    assert _count(host) == before


def test_too_many_recipients_are_refused(make_mail_host: Callable[..., MailHost]) -> None:
    host = make_mail_host(max_recipients=3)
    peer = Raw(host.port)
    try:
        peer.reply()
        peer.cmd("EHLO test")
        peer.cmd("MAIL FROM:<a@example.org>")
        codes = [peer.cmd(f"RCPT TO:<{BRANDON}>")[0] for _ in range(5)]
    finally:
        peer.close()
    assert codes == [250, 250, 250, 452, 452]


def test_connection_cap_refuses_one_more_with_421(
    make_mail_host: Callable[..., MailHost],
) -> None:
    host = make_mail_host(max_connections=2, evict_after=60.0)  # nobody is idle long enough
    peers = [Raw(host.port) for _ in range(2)]
    try:
        assert [p.reply()[0] for p in peers] == [220, 220]
        extra = Raw(host.port)
        peers.append(extra)
        code, text = extra.reply()
        assert code == 421 and "Too many connections" in text
        peers[0].cmd("QUIT")
        peers[0].close()
        time.sleep(0.2)
        again = Raw(host.port)
        peers.append(again)
        assert again.reply()[0] == 220
    finally:
        for peer in peers:
            peer.close()


def test_at_the_cap_the_idlest_connection_makes_room(
    make_mail_host: Callable[..., MailHost],
) -> None:
    host = make_mail_host(max_connections=2)
    silent, busy = Raw(host.port), Raw(host.port)
    peers = [silent, busy]
    try:
        assert silent.reply()[0] == 220 and busy.reply()[0] == 220
        time.sleep(0.7)
        assert busy.cmd("NOOP")[0] == 250  # busy has just been active; silent has not
        newcomer = Raw(host.port)
        peers.append(newcomer)
        assert newcomer.reply()[0] == 220
        code, text = silent.reply()
        assert code == 421 and "idle" in text
        assert busy.cmd("NOOP")[0] == 250
    finally:
        for peer in peers:
            peer.close()


def test_idle_connection_is_closed(make_mail_host: Callable[..., MailHost]) -> None:
    host = make_mail_host(idle_timeout=0.5)
    peer = Raw(host.port)
    try:
        assert peer.reply()[0] == 220
        started = time.monotonic()
        code, _ = peer.reply()  # the server's 421 on timeout, then EOF
        while code not in (0,):
            code, _ = peer.reply()
        assert time.monotonic() - started < 5
    finally:
        peer.close()


def test_implicit_tls_login_and_send(make_mail_host: Callable[..., MailHost]) -> None:
    host = make_mail_host(implicit_tls=True)
    sock = socket.create_connection(("127.0.0.1", host.port), timeout=10)
    tls = host.client_context().wrap_socket(sock, server_hostname="mail.example.com")
    client = smtplib.SMTP(timeout=10)
    client.sock = tls
    client.file = None
    try:
        assert client.getreply()[0] == 220
        client.ehlo()
        assert not client.has_extn("starttls") and client.has_extn("auth")
        client.login("brandon", "abc123")
        assert client.sendmail("a@example.org", [BRANDON], b"Subject: s\r\n\r\nx\r\n") == {}
        client.quit()
    finally:
        client.close()


def test_250_once_in_the_journal_and_in_new_once_the_client_quits(mail_host: MailHost) -> None:
    """The reply to DATA comes once the message is durable in the spool journal (decision
    0122; the order of the syncs is proved in test_smtp_ack_order.py); the reply to QUIT once
    it is in new/, complete, with nothing left in tmp/."""
    from wirelab.mail.spool import parse_segment

    with _smtp(mail_host) as client:
        client.ehlo()
        client.mail("a@example.org")
        client.rcpt(BRANDON)
        code, _ = client.data(b"Subject: durable\r\n\r\nnow\r\n")
        assert code == 250
        journaled = [
            record.data
            for segment in (mail_host.store.root / ".spool").glob("*.wal")
            for record in parse_segment(segment.read_bytes())[0]
        ]
        assert b"Subject: durable\r\n\r\nnow\r\n" in journaled
    # no waiting after the 221: it is there, complete, and nothing is left in tmp/
    newest = mail_host.store.messages("brandon")[-1]
    assert newest.folder == "new" and newest.read_bytes() == b"Subject: durable\r\n\r\nnow\r\n"
    assert not list((mail_host.store.maildir("brandon") / "tmp").iterdir())


def test_a_large_message_is_in_new_at_its_250_and_never_journaled(mail_host: MailHost) -> None:
    """Over JOURNAL_MAX_BYTES the Maildir delivery comes first (writing a large message twice
    costs more than the sync the journal saves)."""
    from wirelab.mail.spool import parse_segment
    from wirelab.mail.store import JOURNAL_MAX_BYTES

    body = b"Subject: large\r\n\r\n" + (b"L" * 998 + b"\r\n") * (JOURNAL_MAX_BYTES // 1000 + 1)
    with _smtp(mail_host) as client:
        assert client.sendmail("a@example.org", [BRANDON], body) == {}
        assert mail_host.store.messages("brandon")[-1].read_bytes() == body  # before QUIT
        journaled = [
            record.data
            for segment in (mail_host.store.root / ".spool").glob("*.wal")
            for record in parse_segment(segment.read_bytes())[0]
        ]
        assert body not in journaled


def test_a_full_spool_is_a_452_and_the_next_message_fits_again(mail_host: MailHost) -> None:
    from wirelab.mail.store import _SPOOLS

    with _smtp(mail_host) as client:
        assert client.sendmail("a@example.org", [BRANDON], b"Subject: a\r\n\r\nx\r\n") == {}
        spool = _SPOOLS[(mail_host.store.root / ".spool").resolve()]
        spool.limit = 2000
        with pytest.raises(smtplib.SMTPDataError) as caught:
            client.sendmail(
                "a@example.org", [BRANDON], b"Subject: b\r\n\r\n" + (b"y" * 70 + b"\r\n") * 40
            )
        assert caught.value.smtp_code == 452 and b"spool is full" in caught.value.smtp_error
        spool.limit = 1 << 20
        assert client.sendmail("a@example.org", [BRANDON], b"Subject: c\r\n\r\nz\r\n") == {}
    subjects = [m.read_bytes()[:10] for m in mail_host.store.messages("brandon")[-2:]]
    assert subjects == [b"Subject: a", b"Subject: c"]


def test_tls_context_without_the_lab_ca_fails_verification(mail_host: MailHost) -> None:
    with _smtp(mail_host) as client:
        client.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())


def test_bare_line_end_check_agrees_with_the_regex() -> None:
    """The counting check (fast on 1 MiB) answers exactly as the look-behind regex does."""
    import itertools
    import random

    from wirelab.smtp.server import BARE_LINE_END, has_bare_line_end

    alphabet = [b"\r", b"\n", b"x", b"."]
    cases = [b"".join(p) for n in range(6) for p in itertools.product(alphabet, repeat=n)]
    rng = random.Random(13)
    cases += [bytes(rng.choice(b"\r\nx.") for _ in range(rng.randrange(200))) for _ in range(2000)]
    for data in cases:
        assert has_bare_line_end(data) == bool(BARE_LINE_END.search(data)), data
