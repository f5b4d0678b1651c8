"""Chapter 6 both ways: our TLS client against the book's server, the book's client against ours.

The peers (:mod:`tests.interop.tls_peers`) behave on the wire like the book's ``safe_tls.py``;
each test checks the transcript (the application bytes each way, and how each stream ended),
not only an exit status. Both TLS modes, 1.2 and 1.3.
"""

from __future__ import annotations

import json
import os
import select
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.lab.state import LabState
from wirelab.net.ca import LabCA
from wirelab.tls.client import fetch, make_client_context

from .tls_peers import BOOK_GREETING, BookCertificates, book_certificates, book_client, book_server

VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]
LABEL = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}
NO_CLOSE_NOTIFY = "the server closed without a TLS close_notify (as the book's safe_tls.py does)"


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> BookCertificates:
    """Certificates with the book's flaw (a CA whose basicConstraints is not critical)."""
    return book_certificates(tmp_path_factory.mktemp("book-certs"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's environment with no lab running (a private state directory)."""
    environ = dict(os.environ, WIRELAB_HOME=str(tmp_path / "home"), NO_COLOR="1")
    environ.pop("COLUMNS", None)
    return environ


def connect(env: dict[str, str], port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``wirelab tls connect 127.0.0.1 -p PORT --servername localhost ARGS...``."""
    return run_wirelab(
        "tls", "connect", "127.0.0.1", "-p", str(port), "--servername", "localhost", *args, env=env
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: "), done.stderr
    return lines[0]


# --- our client, the book's server ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_our_client_reads_the_book_servers_greeting(
    book: BookCertificates, env: dict[str, str], version: ssl.TLSVersion
) -> None:
    """Was: the greeting thrown away and a traceback ("handshake not done yet")."""
    with book_server(book.server_pem, maximum_version=version) as ((_, port), seen):
        done = connect(env, port, "--cafile", str(book.ca), "--no-strict-x509")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == "Simple is better than complex.\n"  # the 30 bytes, one line
    status, note = done.stderr.strip().splitlines()
    assert status.startswith(f"{LABEL[version]} ")
    assert status.endswith("certificate verified for localhost (not strict X.509)")
    assert note.startswith(NO_CLOSE_NOTIFY)
    # the transcript, from the book server's side
    assert seen.error == ""
    assert seen.version == LABEL[version]
    assert seen.sent == [BOOK_GREETING]
    assert seen.received == []  # like the book's client, ours sends no application data


@pytest.mark.parametrize("version", VERSIONS)
def test_our_client_json_against_the_book_server(
    book: BookCertificates, env: dict[str, str], version: ssl.TLSVersion
) -> None:
    with book_server(book.server_pem, maximum_version=version) as ((_, port), seen):
        done = connect(env, port, "--cafile", str(book.ca), "--no-strict-x509", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["text"] == BOOK_GREETING.decode()
    assert doc["close_notify"] is False and doc["strict_x509"] is False
    assert doc["version"] == LABEL[version] and doc["peer_subject"] == "CN=localhost"
    assert seen.sent == [BOOK_GREETING] and seen.received == []


@pytest.mark.parametrize("version", VERSIONS)
def test_the_library_reports_the_missing_close_notify(
    book: BookCertificates, version: ssl.TLSVersion
) -> None:
    ctx = make_client_context(cafile=book.ca, strict_x509=False)
    with book_server(book.server_pem, maximum_version=version) as ((host, port), seen):
        got = fetch(host, port, context=ctx, servername="localhost")
    assert got.data == BOOK_GREETING
    assert got.close_notify is False
    assert got.version == LABEL[version]
    assert seen.sent == [BOOK_GREETING] and seen.received == []


def test_strict_x509_stays_the_default_with_a_clear_message(
    book: BookCertificates, env: dict[str, str]
) -> None:
    with book_server(book.server_pem) as ((_, port), seen):
        done = connect(env, port, "--cafile", str(book.ca))
    line = one_error_line(done)
    assert "certificate is not RFC 5280-conformant (strict verification)" in line
    assert "needs --no-strict-x509 (which still checks the chain and the name)" in line
    assert done.stdout == ""
    assert seen.sent == [] and seen.error.startswith("handshake: ")  # we refused it


def test_no_strict_x509_still_checks_the_name(book: BookCertificates, env: dict[str, str]) -> None:
    with book_server(book.server_pem) as ((_, port), seen):
        done = run_wirelab(
            "tls", "connect", "127.0.0.1", "-p", str(port), "--servername", "www.example.com",
            "--cafile", str(book.ca), "--no-strict-x509", env=env,
        )  # fmt: skip
    assert "hostname mismatch" in one_error_line(done)
    assert seen.sent == []


def test_no_strict_x509_still_checks_the_chain(
    book: BookCertificates, env: dict[str, str], tmp_path: Path
) -> None:
    stranger = book_certificates(tmp_path / "stranger")  # same shape and name, another key
    with book_server(book.server_pem) as ((_, port), seen):
        done = connect(env, port, "--cafile", str(stranger.ca), "--no-strict-x509")
    # the stranger has the same subject, so OpenSSL tries it as the issuer: the signature fails
    assert one_error_line(done).endswith("failed: certificate signature is invalid")
    assert seen.sent == []


@pytest.mark.parametrize("version", VERSIONS)
def test_our_client_sends_close_notify_when_it_closes(
    book: BookCertificates, version: ssl.TLSVersion
) -> None:
    """Not the book's server: one that ends with close_notify and waits for the client's."""
    ctx = make_client_context(cafile=book.ca, strict_x509=False)
    with book_server(book.server_pem, maximum_version=version, observe_client_close=True) as (
        (host, port),
        seen,
    ):
        got = fetch(host, port, context=ctx, servername="localhost")
    assert got.data == BOOK_GREETING and got.close_notify is True
    assert seen.ended_by == "close_notify"
    # the control: the book's client exits without one, and the same server sees that
    with book_server(book.server_pem, maximum_version=version, observe_client_close=True) as (
        (host, port),
        seen,
    ):
        heard = book_client("localhost", port, cafile=book.ca, address=host)
    assert heard.received == [BOOK_GREETING] and heard.ended_by == "close_notify"
    assert seen.ended_by == "eof"


def test_inspect_accepts_the_book_ca_only_when_asked(
    book: BookCertificates, env: dict[str, str]
) -> None:
    with book_server(book.server_pem) as ((_, port), _seen):
        done = run_wirelab(
            "tls", "inspect", "127.0.0.1", "-p", str(port), "--servername", "localhost",
            "--cafile", str(book.ca), "--no-strict-x509", "--json", env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["trusted"] is True and "not strict X.509" in doc["trust"]
    assert doc["name_match"] == "CN=localhost (common name; no subjectAltName)"
    assert doc["findings"] == ["no-subject-alt-name"]
    with book_server(book.server_pem) as ((_, port), _seen):
        done = run_wirelab(
            "tls", "inspect", "127.0.0.1", "-p", str(port), "--servername", "localhost",
            "--cafile", str(book.ca), "--json", env=env,
        )  # fmt: skip
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["trusted"] is False and doc["problem"] == "not-conformant"
    assert doc["verdict"].startswith("not RFC 5280-conformant: ")
    assert doc["verdict"].endswith(
        "needs --no-strict-x509 (which still checks the chain and the name)"
    )


# --- the book's client, our server ------------------------------------------------------


@contextmanager
def wirelab_serve(home: Path, *args: str) -> Iterator[tuple[int, list[str]]]:
    """``wirelab tls serve -p 0 ARGS...`` in a child; yields its port and, at the end, its log."""
    environ = dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "tls", "serve", "-p", "0", *args],
        env=environ,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    log: list[str] = []
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 20
        while "listening at" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stderr.readline()
        assert "listening at 127.0.0.1:" in line, line
        yield int(line.split("127.0.0.1:")[1].split(" ")[0]), log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            log.extend(proc.stderr.read().splitlines())
            proc.stderr.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_the_book_client_against_wirelab_tls_serve(tmp_path: Path, version: ssl.TLSVersion) -> None:
    """Our server answers with exactly the book server's bytes, then a close_notify."""
    with wirelab_serve(tmp_path, "--max-version", LABEL[version][4:]) as (port, log):
        ca = LabCA.load_or_create(tmp_path / "ca")
        heard = book_client("localhost", port, cafile=ca.cert_path)
    assert heard.error == ""
    assert heard.version == LABEL[version]
    assert heard.printed == [
        f"Connected to host 'localhost' and port {port}",
        "b'Simple is better than complex.'",
    ]
    assert heard.received == [BOOK_GREETING]  # 30 bytes, no newline: the book server's
    assert heard.sent == []
    assert heard.ended_by == "close_notify"
    assert log[-1] == "stopped after greeting 1 clients"


def test_the_book_client_against_the_lab_greeting(wirelab_lab: LabState) -> None:
    ep = wirelab_lab.endpoint("tls", "greeting")
    heard = book_client(ep.host, ep.port, cafile=Path(wirelab_lab.ca), address=ep.address)
    assert heard.error == ""
    assert heard.printed[1:] == ["b'Simple is better than complex.'"]
    assert heard.received == [BOOK_GREETING] and heard.ended_by == "close_notify"
