"""STARTTLS against independent servers: aiosmtpd (SMTP) and RFC responders (POP3/IMAP/FTP)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from wirelab.errors import RemoteProtocolError, Timeout
from wirelab.net.ca import LabCA
from wirelab.tls.client import make_client_context, open_tls
from wirelab.tls.inspect import inspect

from .starttls_servers import (
    aiosmtpd_server,
    ftp_handler,
    imap_handler,
    one_shot,
    pop3_handler,
    silent_after_greeting,
)


@pytest.fixture(scope="module")
def server_ctx(server_pem: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*server_pem)
    return ctx


def test_smtp_starttls_with_aiosmtpd(ca: LabCA, server_ctx: ssl.SSLContext) -> None:
    with aiosmtpd_server(server_ctx) as (host, port):
        ctx = make_client_context(cafile=ca.cert_path)
        with open_tls(host, port, context=ctx, servername="localhost", starttls="smtp") as tls:
            assert tls.version() == "TLSv1.3"
            tls.sendall(b"EHLO client.example.com\r\n")  # RFC 3207 §4.2: start over
            reply = b""
            while not reply.endswith(b"\r\n") or b"250 " not in reply:
                chunk = tls.recv(4096)
                assert chunk, reply
                reply += chunk
            assert b"STARTTLS" not in reply  # no longer offered once TLS is on
            tls.sendall(b"QUIT\r\n")
            assert tls.recv(100).startswith(b"221")


def test_inspect_smtp_starttls(ca: LabCA, server_ctx: ssl.SSLContext) -> None:
    with aiosmtpd_server(server_ctx) as (host, port):
        report = inspect(host, port, starttls="smtp", cafile=ca.cert_path, servername="localhost")
    assert report.trusted, report.verdict.line
    assert report.starttls == "smtp"
    assert report.version == "TLSv1.3"
    assert report.chain[0].dns_names == ("localhost",)


def test_smtp_server_without_starttls(ca: LabCA) -> None:
    with (
        aiosmtpd_server(None) as (host, port),
        pytest.raises(RemoteProtocolError, match="does not offer STARTTLS"),
    ):
        open_tls(host, port, context=make_client_context(cafile=ca.cert_path), starttls="smtp")


@pytest.mark.parametrize(
    ("protocol", "handler"),
    [("pop3", pop3_handler), ("imap", imap_handler), ("ftp", ftp_handler)],
)
def test_starttls_responders(
    protocol: str,
    handler: Callable[[ssl.SSLContext], Callable[..., None]],
    ca: LabCA,
    server_ctx: ssl.SSLContext,
) -> None:
    ctx = make_client_context(cafile=ca.cert_path)
    with (
        one_shot(handler(server_ctx)) as (host, port),
        open_tls(host, port, context=ctx, servername="localhost", starttls=protocol) as tls,
    ):
        tls.sendall(b"ping\r\n")
        assert tls.recv(100) == b"over TLS: ping\r\n"
    with one_shot(handler(server_ctx)) as (host, port):
        report = inspect(host, port, starttls=protocol, cafile=ca.cert_path, servername="localhost")
    assert report.trusted and report.version in ("TLSv1.2", "TLSv1.3")


def test_security_pop3_plaintext_injection_is_refused(
    ca: LabCA, server_ctx: ssl.SSLContext
) -> None:
    handler = pop3_handler(server_ctx, inject=b"+OK injected before TLS\r\n")
    with one_shot(handler) as (host, port), pytest.raises(RemoteProtocolError, match="injected"):
        open_tls(host, port, context=make_client_context(cafile=ca.cert_path), starttls="pop3")


def test_stalled_starttls_dialogue_times_out(ca: LabCA) -> None:
    handler = silent_after_greeting(b"220 mail.example.com ESMTP\r\n")
    with one_shot(handler) as (host, port), pytest.raises(Timeout, match="did not reach STARTTLS"):
        open_tls(
            host,
            port,
            context=make_client_context(cafile=ca.cert_path),
            starttls="smtp",
            timeout=0.5,
        )
