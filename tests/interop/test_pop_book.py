"""Chapters 14 and 15 with the book's scripts (test-only peers, ``book_mail.py``) against the
lab's POP3 and IMAP services: only the port changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from wirelab.lab.state import LabState, ServiceView
from wirelab.mail.store import MailStore
from wirelab.smtp.service import mail_root

PEER = Path(__file__).resolve().parent / "book_mail.py"


def book(
    program: str, port: int, *args: str, stdin: str, state: LabState
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BOOK_MAIL_PORT": str(port),
        "SSL_CERT_FILE": str(Path(state.directory) / "ca" / "ca.pem"),
    }
    return subprocess.run(
        [sys.executable, "-u", str(PEER), program, "localhost", "brandon", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        start_new_session=True,  # no terminal: getpass reads standard input
    )


def _store(state: LabState) -> MailStore:
    return MailStore(mail_root(Path(state.directory)))


def test_popconn_apopconn_mailbox(lab_pop3: ServiceView, wirelab_lab: LabState) -> None:
    port = lab_pop3.endpoint("pop3s").port
    messages = _store(wirelab_lab).messages("brandon")
    for program in ("popconn.py", "apopconn.py"):
        done = book(program, port, stdin="abc123\n", state=wirelab_lab)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith("You have "), done.stdout
        assert "messages totaling" in done.stdout
    done = book("popconn.py", port, stdin="wrong\n", state=wirelab_lab)
    assert "Login failed: b'-ERR [AUTH] Authentication failed" in done.stdout
    done = book("mailbox.py", port, stdin="abc123\n", state=wirelab_lab)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) >= len(messages) - 2  # others may deliver meanwhile
    assert done.stdout.startswith("Message 1 has ")


def test_download_and_delete_commits_at_quit(lab_pop3: ServiceView, wirelab_lab: LabState) -> None:
    store = _store(wirelab_lab)
    store.deliver("brandon", b"From: book@example.com\r\nSubject: book ch14\r\n\r\nbye\r\n")
    count = len(store.messages("brandon"))
    answers = "n\nn\n" * (count - 1) + "y\ny\n"
    done = book(
        "download-and-delete.py",
        lab_pop3.endpoint("pop3s").port,
        stdin="abc123\n" + answers,
        state=wirelab_lab,
    )
    assert done.returncode == 0, done.stderr
    assert "Subject: book ch14" in done.stdout and "Deleted." in done.stdout
    assert "bye" in done.stdout
    subjects = [m.read_bytes() for m in store.messages("brandon")]
    assert not any(b"Subject: book ch14" in s for s in subjects)


def test_imap_scripts(lab_imap: ServiceView, wirelab_lab: LabState) -> None:
    port = lab_imap.endpoint("imaps").port
    done = book("open_imaplib.py", port, stdin="abc123\n", state=wirelab_lab)
    assert done.returncode == 0, done.stderr
    assert "Status: 'OK'" in done.stdout and "INBOX" in done.stdout
    done = book("open_imap.py", port, stdin="abc123\n", state=wirelab_lab)
    assert done.returncode == 0, done.stderr
    assert "Listing mailboxes:" in done.stdout and "INBOX" in done.stdout
    done = book("folder_info.py", port, stdin="abc123\n", state=wirelab_lab)
    assert done.returncode == 0, done.stderr
    assert "b'EXISTS': " in done.stdout and "b'UIDVALIDITY': " in done.stdout
    done = book("folder_summary.py", port, "INBOX", stdin="abc123\n", state=wirelab_lab)
    assert done.returncode == 0, done.stderr
    assert "Parts: multipart/alternative text/plain message/rfc822" in done.stdout
    done = book("folder_info.py", port, stdin="wrong\n", state=wirelab_lab)
    assert done.returncode == 1 and "Could not log in:" in done.stdout
