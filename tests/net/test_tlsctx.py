"""Secure contexts over real loopback TLS: what verifies, what fails, and how failures read.

Each test runs a one-connection server in a thread on 127.0.0.1 port 0 and a stdlib client;
nothing is mocked and verification is never turned off.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from wirelab.errors import ConfigError, TLSError
from wirelab.net.ca import IssuedCert, LabCA
from wirelab.net.tlsctx import (
    client_context,
    describe_tls_error,
    server_context,
    wrap_tls_error,
)

TIMEOUT = 5.0
NOW = dt.datetime.now(dt.UTC)
HOSTS = ["localhost", "www.example.com"]
UNKNOWN_CA = "unknown CA (not signed by a trusted authority)"


class OneShotServer:
    """Serve one connection: TLS handshake (or plain text when ``ctx`` is None), one line."""

    def __init__(self, ctx: ssl.SSLContext | None) -> None:
        self.ctx = ctx
        self.error: OSError | None = None
        self.peer_cert: dict[str, Any] | None = None
        self.version: str | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="tls-test-server")

    def __enter__(self) -> OneShotServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._thread.join(TIMEOUT * 2)
        self._listener.close()
        assert not self._thread.is_alive(), "the test server did not finish"

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            self.error = exc
            return
        conn.settimeout(TIMEOUT)
        if self.ctx is None:
            with conn:
                conn.sendall(b"220 plain text here\r\n")
                self._drain(conn)
            return
        with self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
            try:
                tls.do_handshake()
                self.peer_cert = tls.getpeercert()
                self.version = tls.version()
                tls.sendall(b"hello\n")
            except OSError as exc:  # ssl.SSLError included
                self.error = exc
            # Close gently: FIN after our last record, then read until the client is gone, so
            # that no RST overtakes an alert or the greeting on its way to the client.
            self._drain(tls)

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)  # on an SSLSocket this also drops to plain TCP
            while sock.recv(4096):
                pass
        except OSError:
            pass


def talk(ctx: ssl.SSLContext, port: int, server_hostname: str) -> bytes:
    """Connect to the test server, verify it as ``server_hostname``, read its line."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                data = b""
                while not data.endswith(b"\n") and (chunk := tls.recv(100)):
                    data += chunk
                return data
        except ssl.SSLError as exc:
            raise wrap_tls_error(exc, server_hostname) from exc


def tls_failure(ctx: ssl.SSLContext, port: int, server_hostname: str) -> TLSError:
    with pytest.raises(TLSError) as info:
        talk(ctx, port, server_hostname)
    assert isinstance(info.value.__cause__, ssl.SSLError)
    return info.value


def plain_line(err: TLSError) -> str:
    cause = err.__cause__
    assert isinstance(cause, ssl.SSLError)
    line = describe_tls_error(cause)
    assert str(err).endswith(f": {line}")
    return line


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA.load_or_create(tmp_path_factory.mktemp("lab") / "ca")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA.load_or_create(tmp_path_factory.mktemp("elsewhere") / "ca")


@pytest.fixture(scope="module")
def leaf(ca: LabCA) -> IssuedCert:
    return ca.issue(HOSTS)


def serving(issued: IssuedCert, directory: Path, **kwargs: Any) -> ssl.SSLContext:
    cert, key = issued.write(directory, "server")
    return server_context(cert, key, **kwargs)


@pytest.mark.parametrize("name", ["www.example.com", "localhost", "127.0.0.1"])
def test_verifies_dns_and_ip_names_under_strict_mode(
    ca: LabCA, leaf: IssuedCert, tmp_path: Path, name: str
) -> None:
    client = client_context(cafile=ca.cert_path)
    client.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 sets by default
    assert client.check_hostname and client.verify_mode is ssl.CERT_REQUIRED
    with OneShotServer(serving(leaf, tmp_path)) as server:
        assert talk(client, server.port, name) == b"hello\n"
    assert server.error is None and server.version in ("TLSv1.2", "TLSv1.3")


def test_client_context_defaults(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    for client in (client_context(), client_context(cadata=ca.cert_pem)):
        assert client.check_hostname
        assert client.verify_mode is ssl.CERT_REQUIRED
        assert client.verify_flags & ssl.VERIFY_X509_STRICT
        assert client.minimum_version is ssl.TLSVersion.TLSv1_2
    from_text = client_context(cadata=ca.cert_pem.decode())
    with OneShotServer(serving(leaf, tmp_path)) as server:
        assert talk(from_text, server.port, "localhost") == b"hello\n"


def test_wrong_hostname(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    with OneShotServer(serving(leaf, tmp_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "www.wrong.example")
    assert plain_line(err) == "hostname mismatch: certificate is not valid for www.wrong.example"
    assert str(err).startswith("TLS with www.wrong.example failed: ")
    cause = err.__cause__
    assert isinstance(cause, ssl.SSLError)
    assert describe_tls_error(cause, certificate_names=HOSTS) == (
        "hostname mismatch: certificate is for localhost, www.example.com, not www.wrong.example"
    )


def test_wrong_ip_address(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    with OneShotServer(serving(leaf, tmp_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "10.9.8.7")
    assert plain_line(err) == "IP address mismatch: certificate is not valid for 10.9.8.7"


def test_expired_certificate(ca: LabCA, tmp_path: Path) -> None:
    expired = ca.issue(
        HOSTS, not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=1)
    )
    with OneShotServer(serving(expired, tmp_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == "certificate has expired"
    assert str(err) == "TLS with localhost failed: certificate has expired"


def test_not_yet_valid_certificate(ca: LabCA, tmp_path: Path) -> None:
    future = ca.issue(HOSTS, not_before=NOW + dt.timedelta(days=1))
    with OneShotServer(serving(future, tmp_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == "certificate is not yet valid"


@pytest.mark.parametrize("send_chain", [True, False], ids=["with-root", "leaf-only"])
def test_certificate_from_an_untrusted_ca(
    ca: LabCA, other_ca: LabCA, tmp_path: Path, send_chain: bool
) -> None:
    stranger = other_ca.issue(HOSTS)
    if not send_chain:
        stranger = IssuedCert(stranger.cert_pem, stranger.key_pem, b"")
    with OneShotServer(serving(stranger, tmp_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == UNKNOWN_CA


def test_self_signed_certificate(ca: LabCA, other_ca: LabCA) -> None:
    # A CA certificate is self-signed: serve the untrusted CA's own certificate and key.
    with OneShotServer(server_context(other_ca.cert_path, other_ca.key_path)) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == "self-signed certificate"


def test_required_client_certificate(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    server_ctx = serving(leaf, tmp_path, client_cafile=ca.cert_path, require_client_cert=True)
    assert server_ctx.verify_mode is ssl.CERT_REQUIRED
    assert len(server_ctx.get_ca_certs()) == 1  # the lab CA only, never the system store

    with OneShotServer(server_ctx) as server:  # TLS 1.3: refused after the client's handshake
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == "peer requires a client certificate"
    assert isinstance(server.error, ssl.SSLError)
    assert describe_tls_error(server.error) == "peer sent no client certificate"

    alice_cert, alice_key = ca.issue(["alice.example"], ip_addresses=(), client=True).write(
        tmp_path, "alice"
    )
    alice = client_context(cafile=ca.cert_path, certfile=alice_cert, keyfile=alice_key)
    with OneShotServer(server_ctx) as server:
        assert talk(alice, server.port, "localhost") == b"hello\n"
    assert server.error is None and server.peer_cert is not None
    assert ((("commonName", "alice.example"),)) in server.peer_cert["subject"]


def test_server_refuses_a_server_certificate_used_as_a_client_certificate(
    ca: LabCA, leaf: IssuedCert, tmp_path: Path
) -> None:
    server_ctx = serving(leaf, tmp_path, client_cafile=ca.cert_path, require_client_cert=True)
    cert, key = ca.issue(["bob.example"]).write(tmp_path, "bob")  # serverAuth only
    bob = client_context(cafile=ca.cert_path, certfile=cert, keyfile=key)
    with OneShotServer(server_ctx) as server:
        err = tls_failure(bob, server.port, "localhost")
    assert plain_line(err) == "peer rejected our certificate (wrong type or use)"
    assert isinstance(server.error, ssl.SSLCertVerificationError)
    assert describe_tls_error(server.error).startswith("certificate is not for this use")


def test_optional_client_certificate(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    server_ctx = serving(leaf, tmp_path, client_cafile=ca.cert_path)
    assert server_ctx.verify_mode is ssl.CERT_OPTIONAL
    with OneShotServer(server_ctx) as server:
        assert talk(client_context(cafile=ca.cert_path), server.port, "localhost") == b"hello\n"
    assert server.error is None and not server.peer_cert


def test_server_refuses_tls_1_1(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    server_ctx = serving(leaf, tmp_path)
    assert server_ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifying, but stuck in 2006
    old.load_verify_locations(ca.cert_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL 3 offer TLS 1.1 at all
        except (ValueError, ssl.SSLError) as exc:
            pytest.skip(f"the local OpenSSL cannot build a TLS 1.1 client: {exc}")
        with OneShotServer(server_ctx) as server:
            err = tls_failure(old, server.port, "localhost")
    cause = err.__cause__
    assert isinstance(cause, ssl.SSLError)
    if cause.reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip("the local OpenSSL refuses to send a TLS 1.1 ClientHello")
    assert plain_line(err) == "no TLS version in common"
    assert isinstance(server.error, ssl.SSLError)
    assert describe_tls_error(server.error) == "no TLS version in common"


def test_plain_text_peer(ca: LabCA) -> None:
    with OneShotServer(None) as server:
        err = tls_failure(client_context(cafile=ca.cert_path), server.port, "localhost")
    assert plain_line(err) == "peer does not speak TLS"


def test_configuration_errors(ca: LabCA, other_ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    cert, key = leaf.write(tmp_path, "server")
    with pytest.raises(ConfigError, match="RFC 8996"):
        client_context(minimum_version=ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ConfigError, match="RFC 8996"):
        server_context(cert, key, minimum_version=ssl.TLSVersion.TLSv1)
    assert client_context(minimum_version=ssl.TLSVersion.TLSv1_3).minimum_version is (
        ssl.TLSVersion.TLSv1_3
    )
    with pytest.raises(ConfigError, match="CA file"):
        client_context(cafile=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="client_cafile"):
        server_context(cert, key, require_client_cert=True)
    with pytest.raises(ConfigError, match="certificate and private key do not match"):
        server_context(cert, other_ca.key_path)
    with pytest.raises(ConfigError, match="without its certificate"):
        client_context(keyfile=key)
    with pytest.raises(ConfigError, match="cannot load the server certificate"):
        server_context(tmp_path / "missing.pem")


def test_describe_other_errors() -> None:
    assert describe_tls_error(ssl.SSLZeroReturnError()) == "peer closed the TLS connection"
    assert (
        describe_tls_error(ssl.SSLEOFError()) == "peer closed the connection in the middle of TLS"
    )
    assert describe_tls_error(ssl.SSLError("odd")).startswith("TLS error: ")
    err = wrap_tls_error(ssl.SSLZeroReturnError(), "mail.example.com")
    assert isinstance(err, TLSError)
    assert str(err) == "TLS with mail.example.com failed: peer closed the TLS connection"


def test_strict_x509_is_the_default_and_refuses_the_books_kind_of_ca(tmp_path: Path) -> None:
    """Issue 9: a CA whose basicConstraints is not critical, and a leaf with no extensions."""
    from tests.interop.tls_peers import book_certificates

    book = book_certificates(tmp_path / "book")
    strict = client_context(cafile=book.ca)
    assert strict.verify_flags & ssl.VERIFY_X509_STRICT
    assert strict.hostname_checks_common_name is False
    server = server_context(book.server_pem)
    with OneShotServer(server) as one:
        err = tls_failure(strict, one.port, "localhost")
    assert plain_line(err).startswith(
        "certificate is not RFC 5280-conformant (strict verification): "
    )


def test_no_strict_x509_still_verifies_the_chain_and_the_name(tmp_path: Path) -> None:
    from tests.interop.tls_peers import book_certificates

    book = book_certificates(tmp_path / "book")
    relaxed = client_context(cafile=book.ca, strict_x509=False)
    assert not relaxed.verify_flags & ssl.VERIFY_X509_STRICT
    assert relaxed.check_hostname and relaxed.verify_mode is ssl.CERT_REQUIRED
    server = server_context(book.server_pem)
    with OneShotServer(server) as one:  # the name comes from the common name: no SAN at all
        assert talk(relaxed, one.port, "localhost") == b"hello\n"
    with OneShotServer(server) as one:
        err = tls_failure(relaxed, one.port, "www.example.com")
    assert plain_line(err).startswith("hostname mismatch")
    stranger = book_certificates(tmp_path / "stranger")
    with OneShotServer(server) as one:
        err = tls_failure(
            client_context(cafile=stranger.ca, strict_x509=False), one.port, "localhost"
        )
    assert plain_line(err) == "certificate signature is invalid"
    with OneShotServer(server) as one:  # and the system store does not know the book's CA
        err = tls_failure(client_context(strict_x509=False), one.port, "localhost")
    assert plain_line(err) == UNKNOWN_CA


def test_a_maximum_version_caps_or_pins(ca: LabCA, leaf: IssuedCert, tmp_path: Path) -> None:
    client = client_context(cafile=ca.cert_path, maximum_version=ssl.TLSVersion.TLSv1_2)
    with OneShotServer(serving(leaf, tmp_path)) as server:
        assert talk(client, server.port, "localhost") == b"hello\n"
    assert server.version == "TLSv1.2"
    capped = serving(leaf, tmp_path, maximum_version=ssl.TLSVersion.TLSv1_2)
    with OneShotServer(capped) as server:
        assert talk(client_context(cafile=ca.cert_path), server.port, "localhost") == b"hello\n"
    assert server.version == "TLSv1.2"
    with pytest.raises(ConfigError, match="older than the minimum"):
        client_context(
            minimum_version=ssl.TLSVersion.TLSv1_3, maximum_version=ssl.TLSVersion.TLSv1_2
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError, match="maximum TLS version TLSv1_1 is not allowed"):
            client_context(maximum_version=ssl.TLSVersion.TLSv1_1)
