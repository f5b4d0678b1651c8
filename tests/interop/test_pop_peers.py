"""Our POP3 client against Dovecot's pop3d, an independent server, run by the test."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.interop.mail_peers import Dovecot, dovecot_server
from wirelab.mail.seed import seed_messages
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context
from wirelab.pop.client import PopClient

_fills = itertools.count(1)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dovecot, LabCA]]:
    base = tmp_path_factory.mktemp("dovecot")
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(["mail.example.com", "localhost"], base / "ca")
    with dovecot_server(base / "dv", cert, key, {"brandon": "abc123"}) as server:
        yield server, ca


@pytest.fixture
def filled(dovecot: tuple[Dovecot, LabCA]) -> tuple[Dovecot, LabCA, list[bytes]]:
    server, ca = dovecot
    for folder in ("new", "cur"):
        for path in (server.maildir("brandon") / folder).iterdir():
            path.unlink()
    messages = seed_messages()
    stamp = next(_fills)
    for n, data in enumerate(messages):
        server.deliver("brandon", f"{1000 + stamp}.M{n}P1Q{n}.test", data)
    return server, ca, messages


def _args(server: Dovecot, ca: LabCA, *args: str, stls: bool = False) -> list[str]:
    port = server.pop3 if stls else server.pop3s
    extra = ["--stls"] if stls else []
    return [
        "pop",
        *args,
        "127.0.0.1",
        "-p",
        str(port),
        "--cafile",
        str(ca.cert_path),
        "--password",
        "abc123",
        *extra,
    ]


def test_client_reads_dovecot_byte_identically(filled: tuple[Dovecot, LabCA, list[bytes]]) -> None:
    server, ca, messages = filled
    for implicit, port in ((True, server.pop3s), (False, server.pop3)):
        with PopClient(
            "127.0.0.1",
            port,
            context=client_context(cafile=ca.cert_path),
            implicit_tls=implicit,
            timeout=10,
        ) as client:
            assert client.tls
            client.login("brandon", "abc123", apop=not implicit)
            assert client.stat()[0] == len(messages)
            assert [client.retr(n) for n in range(1, len(messages) + 1)] == messages


def test_cli_against_dovecot(filled: tuple[Dovecot, LabCA, list[bytes]]) -> None:
    server, ca, messages = filled
    done = run_wirelab(*_args(server, ca, "stat", "--json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "messages": len(messages),
        "octets": sum(len(m) for m in messages),
    }
    done = run_wirelab(*_args(server, ca, "list", "--apop", stls=True))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"Message 1 has {len(messages[0])} bytes"


def test_review_deletes_on_dovecot_only_at_quit(filled: tuple[Dovecot, LabCA, list[bytes]]) -> None:
    server, ca, messages = filled
    with PopClient(
        "127.0.0.1",
        server.pop3s,
        context=client_context(cafile=ca.cert_path),
        implicit_tls=True,
        timeout=10,
    ) as client:
        client.login("brandon", "abc123")
        client.dele(1)
        client.close()  # no QUIT: Dovecot keeps it
    done = run_wirelab(*_args(server, ca, "review", "--json"), input="n\ny\n" + "n\n" * 20)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["messages"]) == len(messages)
    assert report["messages"][0]["deleted"] is True
    left = [p for f in ("new", "cur") for p in (server.maildir("brandon") / f).iterdir()]
    assert len(left) == len(messages) - 1


def test_fetch_from_dovecot_to_file(
    filled: tuple[Dovecot, LabCA, list[bytes]], tmp_path: Path
) -> None:
    server, ca, messages = filled
    out = tmp_path / "m.eml"
    done = run_wirelab(*_args(server, ca, "fetch", "4", "-o", str(out)))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == messages[3]
