"""Chapter 13 with the book's five scripts (test-only peers, ``book_smtp.py``) against the lab
mail host: only the server changed (``host:port``, which smtplib parses itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wirelab.lab.state import LabState, ServiceView
from wirelab.mail.store import MailStore
from wirelab.smtp.service import mail_root

PEER = Path(__file__).resolve().parent / "book_smtp.py"


def book(
    program: str,
    server: str,
    *addrs: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", str(PEER), program, server, *addrs],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _server(lab_smtp: ServiceView) -> str:
    ep = lab_smtp.endpoint("smtp")
    return f"{ep.address}:{ep.port}"


def _count(state: LabState) -> int:
    return len(MailStore(mail_root(Path(state.directory))).messages("brandon"))


def test_simple_debug_ehlo_deliver(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    before = _count(wirelab_lab)
    server = _server(lab_smtp)
    simple = book("simple.py", server, "author@example.com", "brandon@example.com")
    assert simple.returncode == 0, simple.stderr
    assert "Message successfully sent to 1 recipient(s)" in simple.stdout
    debug = book("debug.py", server, "author@example.com", "brandon@example.com")
    assert debug.returncode == 0, debug.stderr
    assert "send: 'mail FROM:<author@example.com>" in debug.stderr
    assert "reply: retcode (250)" in debug.stderr
    ehlo = book("ehlo.py", server, "author@example.com", "brandon@example.com")
    assert ehlo.returncode == 0, ehlo.stderr
    assert "Maximum message size is 10240000" in ehlo.stdout
    assert _count(wirelab_lab) == before + 3


def test_debug_reports_a_relay_refusal_as_the_book_does(lab_smtp: ServiceView) -> None:
    done = book("debug.py", _server(lab_smtp), "author@example.com", "x@elsewhere.invalid")
    assert done.returncode == 1
    assert " *** Your message may not have been sent!" in done.stdout
    assert "Relaying denied" in done.stdout


def test_login_in_plain_text_is_refused(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    """The book's login.py logs in without STARTTLS: our server offers no AUTH before TLS
    (and answers a bare AUTH with 538 "Encryption required"), so nothing is sent."""
    before = _count(wirelab_lab)
    done = book(
        "login.py",
        _server(lab_smtp),
        "author@example.com",
        "brandon@example.com",
        stdin="brandon\nabc123\n",
    )
    assert done.returncode == 1
    assert "Authentication failed: SMTP AUTH extension not supported by server." in done.stdout
    assert _count(wirelab_lab) == before


def test_tls_upgrades_with_the_lab_ca(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    before = _count(wirelab_lab)
    done = book(
        "tls.py",
        _server(lab_smtp),
        "author@example.com",
        "brandon@example.com",
        env={"SSL_CERT_FILE": str(wirelab_lab.ca)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Negotiating TLS...." in done.stdout and "Using TLS connection." in done.stdout
    assert _count(wirelab_lab) == before + 1


def test_tls_without_the_lab_ca_does_not_send(lab_smtp: ServiceView, wirelab_lab: LabState) -> None:
    before = _count(wirelab_lab)
    done = book(
        "tls.py",
        _server(lab_smtp),
        "author@example.com",
        "brandon@example.com",
        env={"SSL_CERT_FILE": "/nonexistent"},
    )
    assert done.returncode == 1
    assert "certificate verify failed" in done.stdout
    assert _count(wirelab_lab) == before


def test_usage_exits_2(lab_smtp: ServiceView) -> None:
    done = book("simple.py", _server(lab_smtp))
    assert done.returncode == 2 and "usage" in done.stdout
