"""Our TLS client against independent servers: stdlib ssl, openssl s_server, broken peers."""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from wirelab.errors import Broken, ConfigError, LocalProtocolError, Timeout, TLSError
from wirelab.net.ca import LabCA
from wirelab.tls.client import fetch, make_client_context, open_tls

from .tls_helpers import one_shot, tls_server_handler

OPENSSL = "/usr/bin/openssl"


def stdlib_server_ctx(pem: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*pem)
    return ctx


def test_fetch_from_a_stdlib_server(ca: LabCA, server_pem: tuple[Path, Path]) -> None:
    handler = tls_server_handler(stdlib_server_ctx(server_pem), b"hello from the stdlib\n")
    with one_shot(handler) as (host, port):
        got = fetch(
            host, port, context=make_client_context(cafile=ca.cert_path), servername="localhost"
        )
    assert got.text == "hello from the stdlib\n"
    assert got.version in ("TLSv1.2", "TLSv1.3")
    assert got.servername == "localhost"
    assert "CN=localhost" in got.peer_subject


def test_open_tls_against_openssl_s_server(ca: LabCA, server_pem: tuple[Path, Path]) -> None:
    cert, key = server_pem
    proc = subprocess.Popen(
        [
            OPENSSL,
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-naccept",
            "1",
            "-rev",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        # Read the raw pipe, not a buffered readline(): s_server may write its banner and the
        # ACCEPT line in one chunk, and select() does not see what a reader already buffered.
        port = 0
        seen = b""
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + 15
        while not port and time.monotonic() < deadline:
            readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
            found = re.search(rb"^ACCEPT .*:(\d+)\s*$", seen, re.MULTILINE)
            if found:
                port = int(found.group(1))
        assert port, f"openssl s_server did not report its port: {seen!r}"
        ctx = make_client_context(cafile=ca.cert_path)
        with open_tls("127.0.0.1", port, context=ctx, servername="localhost") as tls:
            tls.sendall(b"stressed\n")
            assert tls.recv(100).strip() == b"desserts"
            assert tls.version() == "TLSv1.3"
    finally:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_tls_client_on_a_plaintext_port(ca: LabCA) -> None:
    def smtp_like(conn: socket.socket) -> None:
        conn.sendall(b"220 mail.example.com ESMTP ready\r\n")
        conn.recv(1024)

    with one_shot(smtp_like) as (host, port), pytest.raises(TLSError) as caught:
        fetch(host, port, context=make_client_context(cafile=ca.cert_path))
    assert str(caught.value) == f"TLS with {host}:{port} failed: peer does not speak TLS"


def test_stalled_handshake_times_out(ca: LabCA) -> None:
    def silent(conn: socket.socket) -> None:
        conn.recv(4096)  # take the ClientHello, say nothing
        time.sleep(1.5)

    began = time.monotonic()
    with (
        one_shot(silent) as (host, port),
        pytest.raises(Timeout, match=r"did not finish within 0\.3 s"),
    ):
        fetch(host, port, context=make_client_context(cafile=ca.cert_path), timeout=0.3)
    assert time.monotonic() - began < 5


def test_peer_closing_mid_handshake(ca: LabCA) -> None:
    def rude(conn: socket.socket) -> None:
        conn.recv(10)  # part of the ClientHello, then hang up

    with one_shot(rude) as (host, port), pytest.raises(Broken, match="mid-handshake"):
        fetch(host, port, context=make_client_context(cafile=ca.cert_path))


def test_name_mismatch_names_the_certificate(ca: LabCA, tmp_path: Path) -> None:
    pem = ca.issue(["wrong.example.net"], ip_addresses=()).write(tmp_path, "wrong")
    handler = tls_server_handler(stdlib_server_ctx(pem), b"never sent")
    with one_shot(handler) as (host, port), pytest.raises(TLSError) as caught:
        fetch(host, port, context=make_client_context(cafile=ca.cert_path), servername="localhost")
    assert "hostname mismatch: certificate is for wrong.example.net, not localhost" in str(
        caught.value
    )


def test_untrusted_server_is_refused_by_default(server_pem: tuple[Path, Path]) -> None:
    """No CA file: the system store, which does not know our CA."""
    handler = tls_server_handler(stdlib_server_ctx(server_pem), b"never sent")
    with one_shot(handler) as (host, port), pytest.raises(TLSError, match="unknown CA"):
        fetch(host, port, servername="localhost")


def test_extra_cafile_adds_to_the_system_store(ca: LabCA, server_pem: tuple[Path, Path]) -> None:
    ctx = make_client_context(extra_cafile=ca.cert_path)
    assert ctx.cert_store_stats()["x509_ca"] >= 1
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    handler = tls_server_handler(stdlib_server_ctx(server_pem), b"ok")
    with one_shot(handler) as (host, port):
        assert fetch(host, port, context=ctx, servername="localhost").data == b"ok"


def test_read_limit(ca: LabCA, server_pem: tuple[Path, Path]) -> None:
    handler = tls_server_handler(stdlib_server_ctx(server_pem), b"x" * 5000)
    with one_shot(handler) as (host, port), pytest.raises(LocalProtocolError, match="more than"):
        fetch(
            host,
            port,
            context=make_client_context(cafile=ca.cert_path),
            servername="localhost",
            max_bytes=1000,
        )


def test_bad_ca_file_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError):
        make_client_context(cafile=bogus)
    with pytest.raises(ConfigError):
        make_client_context(extra_cafile=bogus)
