"""Our SMTP client (wirelab.smtp.client) against our server and against raw peers: STARTTLS
with verification and re-EHLO, AUTH only over TLS, SIZE checked in bytes, HELO fallback,
refused recipients reported, and every failure one wirelab error."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.smtp.conftest import MailHost
from wirelab.errors import (
    ConfigError,
    ConnectionRefused,
    LocalProtocolError,
    TLSError,
)
from wirelab.smtp.client import SMTPError, ehlo, send

MAIL = "mail.example.com"
BRANDON = "brandon@example.com"
MESSAGE = b"Subject: client\r\n\r\nfrom our client\r\n"

RawServer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]


def test_send_with_starttls_and_login(mail_host: MailHost) -> None:
    trace: list[str] = []
    result = send(
        "127.0.0.1",
        mail_host.port,
        "a@example.org",
        [BRANDON, "nobody@example.com"],
        MESSAGE,
        context=mail_host.client_context(),
        starttls="require",
        user="brandon",
        password="abc123",
        tls_hostname=MAIL,
        trace=trace.append,
    )
    assert result.tls and result.authenticated
    assert result.accepted == [BRANDON]
    assert result.refused["nobody@example.com"][0] == 550
    assert mail_host.store.messages("brandon")[-1].read_bytes() == MESSAGE
    text = "\n".join(trace)
    # EHLO again after STARTTLS; the credentials never in the trace
    assert text.count("send: 'ehlo") == 2 and "STARTTLS" in text
    assert "AGJyYW5kb24AYWJjMTIz" not in text and "credentials hidden" in text


def test_login_without_tls_is_refused_before_connecting(mail_host: MailHost) -> None:
    with pytest.raises(ConfigError, match="without TLS"):
        send(
            "127.0.0.1",
            mail_host.port,
            "a@example.org",
            [BRANDON],
            MESSAGE,
            starttls="never",
            user="brandon",
            password="abc123",
        )


def test_wrong_host_name_fails_verification(mail_host: MailHost) -> None:
    with pytest.raises(TLSError, match="TLS failure"):
        send(
            "127.0.0.1",
            mail_host.port,
            "a@example.org",
            [BRANDON],
            MESSAGE,
            context=mail_host.client_context(),
            tls_hostname="www.example.org",
        )


def test_size_is_checked_in_bytes_before_sending(
    make_mail_host: Callable[..., MailHost],
) -> None:
    host = make_mail_host(max_message_bytes=100)
    before = len(host.store.messages("brandon"))
    # 60 characters, but 120 bytes in UTF-8: the book's len() on characters would send it
    body = ("Subject: x\r\n\r\n" + "é" * 53 + "\r\n").encode()
    with pytest.raises(LocalProtocolError, match="over the server's SIZE of 100"):
        send(
            "127.0.0.1",
            host.port,
            "a@example.org",
            [BRANDON],
            body,
            context=host.client_context(),
            tls_hostname=MAIL,
        )
    assert len(host.store.messages("brandon")) == before


def test_ehlo_reports_capabilities_before_and_after_tls(mail_host: MailHost) -> None:
    plain = ehlo("127.0.0.1", mail_host.port, context=mail_host.client_context())
    assert plain.esmtp and plain.size == 10240000 and "auth" not in plain.features
    tls = ehlo(
        "127.0.0.1",
        mail_host.port,
        context=mail_host.client_context(),
        starttls=True,
        tls_hostname=MAIL,
    )
    assert tls.tls and tls.features["auth"] == "LOGIN PLAIN"


def test_ehlo_falls_back_to_helo(raw_server: RawServer) -> None:
    def old_server(conn: socket.socket) -> None:
        file = conn.makefile("rb")
        conn.sendall(b"220 old.example.com ready\r\n")
        assert file.readline().lower().startswith(b"ehlo")
        conn.sendall(b"502 5.5.1 EHLO not implemented\r\n")
        assert file.readline().lower().startswith(b"helo")
        conn.sendall(b"250 old.example.com\r\n")
        if file.readline().lower().startswith(b"quit"):
            conn.sendall(b"221 bye\r\n")
        file.close()

    host, port = raw_server(old_server)
    caps = ehlo(host, port)
    assert not caps.esmtp and caps.size is None and caps.greeting == "old.example.com"


def test_a_server_without_starttls_is_an_error_when_required(raw_server: RawServer) -> None:
    def no_tls(conn: socket.socket) -> None:
        file = conn.makefile("rb")
        conn.sendall(b"220 plain.example.com\r\n")
        file.readline()
        conn.sendall(b"250-plain.example.com\r\n250 SIZE 1000\r\n")
        if file.readline().lower().startswith(b"quit"):
            conn.sendall(b"221 bye\r\n")
        file.close()

    host, port = raw_server(no_tls)
    with pytest.raises(SMTPError, match="does not offer STARTTLS"):
        send(
            host,
            port,
            "a@example.org",
            [BRANDON],
            MESSAGE,
            context=ssl.create_default_context(),
            starttls="require",
        )


def test_refused_connection_is_one_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectionRefused, match="refused"):
        send("127.0.0.1", port, "a@example.org", [BRANDON], MESSAGE, starttls="never")


def test_every_recipient_refused_is_an_smtp_error(mail_host: MailHost) -> None:
    with pytest.raises(SMTPError, match="Relaying denied"):
        send(
            "127.0.0.1",
            mail_host.port,
            "a@example.org",
            ["x@elsewhere.invalid"],
            MESSAGE,
            starttls="never",
        )


def test_an_address_with_a_line_break_is_refused(mail_host: MailHost) -> None:
    with pytest.raises(ConfigError, match="not an e-mail address"):
        send(
            "127.0.0.1",
            mail_host.port,
            "a@example.org",
            ["b@example.com\r\nRCPT TO:<x@y>"],
            MESSAGE,
            starttls="never",
        )


def test_cli_serve_listens_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import client_context

    home = tmp_path / "home"
    env = {**os.environ, "WIRELAB_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "smtp", "serve", "127.0.0.1", "-p", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+) \(SMTP with STARTTLS\)", line)
        assert match, line
        context = client_context(cafile=LabCA.load_or_create(home / "ca").cert_path)
        caps = ehlo(
            "127.0.0.1", int(match.group(1)), context=context, starttls=True, tls_hostname=MAIL
        )
        assert caps.features["auth"] == "LOGIN PLAIN"
    finally:
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=20)
    assert child.returncode == 0 and "stopped" in err


def test_trace_of_a_large_message_is_cut(mail_host: MailHost) -> None:
    trace: list[str] = []
    body = b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 2000
    send(
        "127.0.0.1",
        mail_host.port,
        "a@example.org",
        [BRANDON],
        body,
        starttls="never",
        trace=trace.append,
    )
    assert max(len(line) for line in trace) < 2100
    assert any("characters in all" in line for line in trace)
