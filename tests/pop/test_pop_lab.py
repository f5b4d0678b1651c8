"""The lab's POP3 and IMAP services: tour chapters 14 and 15, and the CLI with no address."""

from __future__ import annotations

import json

from tests.conftest import run_wirelab
from wirelab.imap.tour import CHAPTER as CHAPTER_15
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import run_chapters
from wirelab.pop.tour import CHAPTER as CHAPTER_14


def test_chapters_14_and_15_pass(
    lab_pop3: ServiceView, lab_imap: ServiceView, lab_smtp: ServiceView, wirelab_lab: LabState
) -> None:
    results = list(run_chapters([CHAPTER_14, CHAPTER_15], wirelab_lab))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert len(results) == len(CHAPTER_14.steps) + len(CHAPTER_15.steps) == 6
    assert not failed, failed


def test_cli_uses_the_lab_by_name(
    lab_pop3: ServiceView, lab_imap: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("pop", "stat", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    count = json.loads(done.stdout)["messages"]
    done = run_wirelab("imap", "info", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["EXISTS"] == count


def test_lab_mailbox_fixture_serves_what_it_delivers(lab_mailbox: object) -> None:
    import imaplib
    import poplib

    from wirelab.pop.mailbox import LabMailbox

    assert isinstance(lab_mailbox, LabMailbox)
    saved = lab_mailbox.messages()
    try:
        lab_mailbox.clear()
        data = b"Subject: fixture\r\n\r\nfrom the lab_mailbox fixture\r\n"
        lab_mailbox.deliver(data)
        assert lab_mailbox.messages() == [data]
        pop = poplib.POP3_SSL(*lab_mailbox.pop3s, context=lab_mailbox.ssl_context())
        pop.user(lab_mailbox.user)
        pop.pass_(lab_mailbox.password)
        assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == data
        pop.quit()
        imap = imaplib.IMAP4_SSL(*lab_mailbox.imaps, ssl_context=lab_mailbox.ssl_context())
        imap.login(lab_mailbox.user, lab_mailbox.password)
        imap.select("INBOX", readonly=True)
        assert imap.fetch("1", "(BODY.PEEK[])")[1][0][1] == data
        imap.logout()
    finally:
        lab_mailbox.clear()
        for message in saved:
            lab_mailbox.deliver(message)
