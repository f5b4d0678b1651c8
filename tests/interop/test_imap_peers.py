"""Our IMAP client and ``wirelab imap`` against Dovecot's imapd, an independent server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import run_wirelab
from tests.interop.mail_peers import Dovecot, dovecot_server
from wirelab.errors import TLSError
from wirelab.imap import client as imap
from wirelab.mail.seed import NESTED_SUBJECT, seed_messages
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dovecot, LabCA]]:
    base = tmp_path_factory.mktemp("dovecot-imap")
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(["mail.example.com", "localhost"], base / "ca")
    with dovecot_server(base / "dv", cert, key, {"brandon": "abc123"}) as server:
        for n, data in enumerate(seed_messages()):
            server.deliver("brandon", f"{2000 + n}.M{n}P2Q{n}.test", data)
        yield server, ca


def test_client_reads_dovecot_without_marking_seen(dovecot: tuple[Dovecot, LabCA]) -> None:
    server, ca = dovecot
    context = client_context(cafile=ca.cert_path)
    for implicit, port in ((True, server.imaps), (False, server.imap)):
        client = imap.connect(
            "127.0.0.1",
            port,
            "brandon",
            "abc123",
            context=context,
            implicit_tls=implicit,
            timeout=10,
        )
        try:
            found = imap.summaries(client, "INBOX")
            assert len(found) == len(seed_messages())
            nested = next(m for m in found if m.subject == NESTED_SUBJECT)
            numbers = {p.number: p.type for p in nested.parts.walk()}
            assert numbers["1.2.2"] == "image/gif" and numbers["3.2"] == "application/gzip"
            gif = nested.parts.find("1.2.2")
            assert gif is not None and gif.filename == "blue-dot.gif"
            _, gif = imap.fetch_part(client, "INBOX", nested.uid, "1.2.2")
            assert gif.startswith(b"GIF8")
            whole = imap.fetch_message(client, "INBOX", nested.uid)
            assert whole in seed_messages()
            assert all("\\Seen" not in m.flags for m in imap.summaries(client, "INBOX"))
        finally:
            client.logout()


def test_wrong_ca_is_refused(dovecot: tuple[Dovecot, LabCA]) -> None:
    server, _ = dovecot
    with pytest.raises(TLSError):
        imap.connect(
            "127.0.0.1", server.imaps, "brandon", "abc123", context=client_context(), timeout=10
        )


def test_cli_against_dovecot(dovecot: tuple[Dovecot, LabCA]) -> None:
    server, ca = dovecot
    common = [
        "127.0.0.1",
        "-p",
        str(server.imaps),
        "--cafile",
        str(ca.cert_path),
        "--password",
        "abc123",
    ]
    done = run_wirelab("imap", "folders", *common, "--json")
    assert done.returncode == 0, done.stderr
    assert "INBOX" in [f["name"] for f in json.loads(done.stdout)["folders"]]
    done = run_wirelab("imap", "info", *common, "--json")
    assert json.loads(done.stdout)["EXISTS"] == len(seed_messages())
    done = run_wirelab("imap", "summary", *common)
    assert done.returncode == 0, done.stderr
    assert NESTED_SUBJECT[:30] in done.stdout
