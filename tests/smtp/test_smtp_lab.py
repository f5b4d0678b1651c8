"""The lab mail host: the tour's chapters 12 and 13, and the CLI against the running lab."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_wirelab
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import run_chapters
from wirelab.mail.store import MailStore
from wirelab.mail.tour import CHAPTER as CHAPTER_12
from wirelab.smtp.service import mail_root
from wirelab.smtp.tour import CHAPTER as CHAPTER_13


def _store(state: LabState) -> MailStore:
    return MailStore(mail_root(Path(state.directory)))


def test_chapters_12_and_13_pass(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    results = list(run_chapters([CHAPTER_12, CHAPTER_13], wirelab_lab))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert len(results) == len(CHAPTER_12.steps) + len(CHAPTER_13.steps) == 6
    assert not failed, failed


def test_cli_send_with_starttls_and_auth_via_mx(
    lab_smtp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    """No -s: the MX of example.com in the lab DNS (mail.example.com), then STARTTLS, AUTH."""
    before = len(_store(wirelab_lab).messages("brandon"))
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "brandon@example.com",
        "-u",
        "brandon",
        "-m",
        "via MX",
        "--starttls",
        "require",
        "-v",
        env=wirelab_env,
    )
    assert done.returncode == 0, done.stderr
    assert "Message sent to 1 recipient(s) via mail.example.com" in done.stdout
    assert "TLS, logged in as brandon" in done.stdout
    assert "starttls" in done.stderr.lower() and "credentials hidden" in done.stderr
    assert "abc123" not in done.stderr and "YWJjMTIz" not in done.stderr
    assert len(_store(wirelab_lab).messages("brandon")) == before + 1


def test_cli_plaintext_login_is_refused_unless_asked(
    lab_smtp: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "brandon@example.com",
        "-u",
        "brandon",
        "--starttls",
        "never",
        env=wirelab_env,
    )
    assert done.returncode == 1
    assert "refusing to log in without TLS" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_header_injection_through_an_address_is_refused(
    lab_smtp: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "brandon@example.com\nBcc: x@evil.org",
        env=wirelab_env,
    )
    assert done.returncode == 2
    assert "is not an e-mail address" in done.stderr


def test_cli_relay_refused_is_one_line(lab_smtp: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "x@outside.invalid",
        "-s",
        "mail.example.com",
        env=wirelab_env,
    )
    assert done.returncode == 1
    assert "Relaying denied" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_ehlo_lists_size_and_checks_it(
    lab_smtp: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("smtp", "ehlo", "--starttls", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert '"size": 10240000' in done.stdout and '"auth"' in done.stdout
    over = run_wirelab("smtp", "ehlo", "--size", "20000000", env=wirelab_env)
    assert over.returncode == 1 and "over the server's SIZE" in over.stderr


def test_cli_mail_reset_restores_the_seeded_mailbox(
    lab_smtp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("mail", "reset", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert '"messages": 4' in done.stdout
    assert len(_store(wirelab_lab).messages("brandon")) == 4


def test_cli_send_over_implicit_tls(
    lab_smtp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    before = len(_store(wirelab_lab).messages("brandon"))
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "brandon@example.com",
        "-s",
        "mail.example.com",
        "--implicit-tls",
        "-u",
        "brandon",
        "--json",
        env=wirelab_env,
    )
    assert done.returncode == 0, done.stderr
    assert '"tls": true' in done.stdout and '"authenticated": true' in done.stdout
    assert len(_store(wirelab_lab).messages("brandon")) == before + 1


def test_cli_send_file_with_unix_line_ends(
    lab_smtp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    message = tmp_path / "note.eml"
    message.write_bytes(b"Subject: unix\nMessage-ID: <unix-lf@example.org>\n\nLF only.\n")
    done = run_wirelab(
        "smtp",
        "send",
        "me@example.org",
        "brandon@example.com",
        "-s",
        "mail.example.com",
        "--file",
        str(message),
        env=wirelab_env,
    )
    assert done.returncode == 0, done.stderr
    stored = [m.read_bytes() for m in _store(wirelab_lab).messages("brandon")]
    assert b"Subject: unix\r\nMessage-ID: <unix-lf@example.org>\r\n\r\nLF only.\r\n" in stored


def test_cli_null_mx_is_a_name_service_error(
    lab_smtp: ServiceView, wirelab_env: dict[str, str]
) -> None:
    """The lab zone's nomail.example.com has a null MX (RFC 7505): no server to try."""
    done = run_wirelab(
        "smtp", "send", "me@example.org", "someone@nomail.example.com", env=wirelab_env
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "wirelab: error: name service failure: nomail.example.com accepts no mail (null MX)"
    )
