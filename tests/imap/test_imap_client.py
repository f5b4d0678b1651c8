"""Our IMAP client and ``wirelab imap`` against our server: read-only, parts, byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.imap.conftest import ImapHost
from wirelab.errors import ConfigError
from wirelab.imap import client as imap
from wirelab.mail.seed import NESTED_SUBJECT


def _args(host: ImapHost, *args: str) -> list[str]:
    return [
        "imap",
        *args,
        "127.0.0.1",
        "-p",
        str(host.tls_port),
        "--cafile",
        str(host.ca.cert_path),
        "--password",
        "abc123",
    ]


def _connect(host: ImapHost, *, implicit: bool = True) -> object:
    port = host.tls_port if implicit else host.port
    return imap.connect(
        "127.0.0.1",
        port,
        "brandon",
        "abc123",
        context=host.context(),
        implicit_tls=implicit,
        timeout=10,
    )


def _nested_uid(client: object) -> int:
    found = [m for m in imap.summaries(client, "INBOX") if m.subject == NESTED_SUBJECT]
    assert len(found) == 1
    return found[0].uid


def test_summary_fetches_no_body_and_marks_nothing_seen(imap_host: ImapHost) -> None:
    client = _connect(imap_host, implicit=False)  # STARTTLS path
    try:
        found = imap.summaries(client, "INBOX")
        assert len(found) == 4 and all(m.flags == [] for m in found)
        again = imap.summaries(client, "INBOX")
        assert all("\\Seen" not in m.flags for m in again)
    finally:
        client.logout()  # type: ignore[attr-defined]


def test_structure_tree_of_the_nested_message(imap_host: ImapHost) -> None:
    client = _connect(imap_host)
    try:
        uid = _nested_uid(client)
        tree = next(m for m in imap.summaries(client, "INBOX") if m.uid == uid).parts
        numbers = {p.number: p.type for p in tree.walk()}
        assert tree.type == "multipart/mixed"
        assert numbers["1"] == "multipart/alternative"
        assert numbers["1.1"] == "text/plain"
        assert numbers["1.2"] == "multipart/related"
        assert numbers["1.2.2"] == "image/gif"
        assert numbers["3"] == "message/rfc822"
        assert numbers["3.1"] == "text/plain" and numbers["3.2"] == "application/gzip"
        gif, notes = tree.find("1.2.2"), tree.find("2")
        assert gif is not None and gif.filename == "blue-dot.gif"
        assert notes is not None and (notes.disposition, notes.filename) == (
            "attachment",
            "notes.txt",
        )
        part, data = imap.fetch_part(client, "INBOX", uid, "1.2.2")
        assert part.type == "image/gif" and data.startswith(b"GIF8")
        _, text = imap.fetch_part(client, "INBOX", uid, "3.1")
        assert text != b""
        with pytest.raises(ConfigError, match="no leaf part"):
            imap.fetch_part(client, "INBOX", uid, "9")
        assert all("\\Seen" not in m.flags for m in imap.summaries(client, "INBOX"))
    finally:
        client.logout()  # type: ignore[attr-defined]


def test_poplib_imaplib_imapclient_and_ours_read_the_same_bytes(imap_host: ImapHost) -> None:
    import imaplib

    from imapclient import IMAPClient

    stored = {m.key: m.read_bytes() for m in imap_host.store.messages("brandon")}
    ours_client = _connect(imap_host)
    try:
        uid = _nested_uid(ours_client)
        ours = imap.fetch_message(ours_client, "INBOX", uid)
    finally:
        ours_client.logout()  # type: ignore[attr-defined]
    std = imaplib.IMAP4_SSL("127.0.0.1", imap_host.tls_port, ssl_context=imap_host.context())
    std.login("brandon", "abc123")
    std.select("INBOX", readonly=True)
    _, data = std.uid("FETCH", str(uid), "(BODY.PEEK[])")
    std.logout()
    with IMAPClient("127.0.0.1", imap_host.tls_port, ssl_context=imap_host.context()) as other:
        other.login("brandon", "abc123")
        other.select_folder("INBOX", readonly=True)
        third = other.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert ours == data[0][1] == third
    assert ours in stored.values()


def test_cli_folders_info_summary_fetch(imap_host: ImapHost, tmp_path: Path) -> None:
    done = run_wirelab(*_args(imap_host, "folders", "--json"))
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert [f["name"] for f in listing["folders"]] == ["INBOX"]
    done = run_wirelab(*_args(imap_host, "info", "--json"))
    info = json.loads(done.stdout)
    assert info["EXISTS"] == 4 and "UIDVALIDITY" in info and "UIDNEXT" in info
    done = run_wirelab(*_args(imap_host, "summary"))
    assert done.returncode == 0, done.stderr
    assert NESTED_SUBJECT[:30] in done.stdout and "1.2.2  image/gif" in done.stdout
    done = run_wirelab(*_args(imap_host, "summary", "--json"))
    uid = next(m["uid"] for m in json.loads(done.stdout) if m["subject"] == NESTED_SUBJECT)
    out = tmp_path / "dot.gif"
    done = run_wirelab(*_args(imap_host, "fetch", str(uid), "--part", "1.2.2", "-o", str(out)))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"GIF8")
    done = run_wirelab(*_args(imap_host, "fetch", str(uid), "--part", "x.1"))
    assert done.returncode == 2
    done = run_wirelab(*_args(imap_host, "summary", "--json"))
    assert all(m["flags"] == [] for m in json.loads(done.stdout))


def test_cli_errors_are_one_line(imap_host: ImapHost) -> None:
    args = _args(imap_host, "folders")
    args[args.index("--password") + 1] = "wrong"
    done = run_wirelab(*args)
    assert done.returncode == 1 and done.stderr.startswith("wirelab: error: IMAP error")
    done = run_wirelab(
        "imap", "folders", "127.0.0.1", "-p", str(imap_host.tls_port), "--password", "x"
    )
    assert done.returncode == 1 and "TLS failure" in done.stderr
    assert "Traceback" not in done.stderr
