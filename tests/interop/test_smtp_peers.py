"""Chapter 13 with independent peers against the lab mail host: swaks with STARTTLS and AUTH,
and the stdlib smtplib with an explicit context; the message lands in the Maildir byte for
byte."""

from __future__ import annotations

import smtplib
import subprocess
from pathlib import Path

from tests.interop.ftp_peers import need
from wirelab.lab.state import LabState, ServiceView
from wirelab.mail.store import MailStore
from wirelab.smtp.service import mail_root

MESSAGE = (
    b"From: swaks@example.org\r\n"
    b"To: brandon@example.com\r\n"
    b"Subject: from swaks\r\n"
    b"Message-ID: <swaks-interop@example.org>\r\n"
    b"\r\n"
    b"Hello from an independent client.\r\n"
    b".A line that starts with a dot survives dot-stuffing.\r\n"
)


def _store(state: LabState) -> MailStore:
    return MailStore(mail_root(Path(state.directory)))


def _swaks(lab_smtp: ServiceView, state: LabState, *extra: str) -> subprocess.CompletedProcess[str]:
    swaks = need("swaks")
    ep = lab_smtp.endpoint("smtp")
    return subprocess.run(
        [
            swaks,
            "--server",
            ep.address,
            "--port",
            str(ep.port),
            "--from",
            "swaks@example.org",
            "--to",
            "brandon@example.com",
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            state.ca,
            "--tls-sni",
            "mail.example.com",
            "--helo",
            "swaks.example.org",
            "--timeout",
            "20",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_swaks_tls_auth_delivers_byte_identical(
    lab_smtp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    data = tmp_path / "message.eml"
    # swaks sends the file's text, then CRLF . CRLF: the file holds all but the last CRLF
    data.write_bytes(MESSAGE.removesuffix(b"\r\n"))
    done = _swaks(
        lab_smtp,
        wirelab_lab,
        "--auth",
        "PLAIN",
        "--auth-user",
        "brandon",
        "--auth-password",
        "abc123",
        "--data",
        str(data),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "235 2.7.0 Authentication successful" in done.stdout
    stored = [m.read_bytes() for m in _store(wirelab_lab).messages("brandon")]
    assert MESSAGE in stored, done.stdout


def test_swaks_auth_login_with_a_wrong_password_is_refused(
    lab_smtp: ServiceView, wirelab_lab: LabState
) -> None:
    done = _swaks(
        lab_smtp,
        wirelab_lab,
        "--auth",
        "LOGIN",
        "--auth-user",
        "brandon",
        "--auth-password",
        "wrong",
    )
    assert done.returncode != 0
    assert "535" in done.stdout


def test_smtplib_with_an_explicit_context(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    ep = lab_smtp.endpoint("smtp")
    message = b"Subject: smtplib\r\nMessage-ID: <smtplib-interop@example.org>\r\n\r\nhi\r\n"
    with smtplib.SMTP(ep.address, ep.port, timeout=15) as client:
        client._host = "mail.example.com"  # type: ignore[attr-defined]  # the name to verify
        client.starttls(context=wirelab_lab.ssl_context())
        client.login("brandon", "abc123")
        assert client.sendmail("a@example.org", ["brandon@example.com"], message) == {}
    assert message in [m.read_bytes() for m in _store(wirelab_lab).messages("brandon")]


def test_smtplib_implicit_tls(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    ep = lab_smtp.endpoint("smtps")
    context = wirelab_lab.ssl_context()
    client = smtplib.SMTP_SSL(context=context, timeout=15)
    client._host = "mail.example.com"  # type: ignore[attr-defined]
    try:
        # smtplib.SMTP_SSL wraps with server_hostname=self._host
        client.connect(ep.address, ep.port)
        client._host = "mail.example.com"  # type: ignore[attr-defined]
        client.ehlo()
        assert client.has_extn("auth") and not client.has_extn("starttls")
        client.login("brandon", "abc123")
        client.quit()
    finally:
        client.close()
