"""Our TLS greeting server, driven by independent clients: stdlib ssl and openssl s_client."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wirelab.errors import ConfigError
from wirelab.net.ca import LabCA
from wirelab.tls.server import GREETING, GreetingServer

from .tls_helpers import client_ctx, serving

OPENSSL = "/usr/bin/openssl"


def stdlib_fetch(address: tuple[str, int], ctx: ssl.SSLContext, name: str = "localhost") -> bytes:
    raw = socket.create_connection(address, timeout=5)
    with ctx.wrap_socket(raw, server_hostname=name) as tls:
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data


def client_hello() -> bytes:
    """The first flight of a real TLS client, made with memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == "wirelab.tls.server"]
        if any(text in line for line in lines):
            return lines
        time.sleep(0.02)
    raise AssertionError(f"no log line with {text!r}: {caplog.text}")


def test_stdlib_client_gets_the_greeting(
    greeting_server: Callable[..., GreetingServer], ca: LabCA
) -> None:
    server = greeting_server()
    with serving(server) as address:
        assert stdlib_fetch(address, client_ctx(ca)) == GREETING
        assert stdlib_fetch(address, client_ctx(ca), "127.0.0.1") == GREETING
    assert server.stats.greeted == 2


def test_openssl_s_client_verifies_and_reads_the_greeting(
    greeting_server: Callable[..., GreetingServer], ca: LabCA
) -> None:
    with serving(greeting_server()) as (host, port):
        done = subprocess.run(
            [
                OPENSSL,
                "s_client",
                "-connect",
                f"{host}:{port}",
                "-servername",
                "localhost",
                "-verify_hostname",
                "localhost",
                "-CAfile",
                str(ca.cert_path),
                "-verify_return_error",
                "-brief",
                "-ign_eof",
            ],
            input=b"",
            capture_output=True,
            timeout=20,
            check=False,
        )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    assert "Verification: OK" in output
    assert GREETING.decode().strip() in output


def test_many_clients_at_once(greeting_server: Callable[..., GreetingServer], ca: LabCA) -> None:
    server = greeting_server()
    results: list[bytes] = []
    errors: list[BaseException] = []
    ctx = client_ctx(ca)

    def one() -> None:
        try:
            results.append(stdlib_fetch(address, ctx))
        except BaseException as exc:
            errors.append(exc)

    with serving(server) as address:
        threads = [threading.Thread(target=one) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert not errors, errors[:3]
    assert results == [GREETING] * 40
    assert server.stats.greeted == 40


def test_plaintext_client_logs_one_line_and_server_keeps_serving(
    greeting_server: Callable[..., GreetingServer], ca: LabCA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.tls.server")
    server = greeting_server()
    with serving(server) as address:
        with socket.create_connection(address, timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = plain.recv(100)  # a TLS alert record (content type 21), then EOF
            assert answer[:1] in (b"\x15", b"")
        lines = wait_for_log(caplog, "plain HTTP request")
        assert len(lines) == 1
        assert stdlib_fetch(address, client_ctx(ca)) == GREETING
    assert server.stats.failed_handshakes == 1


def test_stalled_handshake_is_dropped_after_the_timeout(
    greeting_server: Callable[..., GreetingServer], ca: LabCA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.tls.server")
    server = greeting_server(handshake_timeout=0.3)
    with serving(server) as address:
        with socket.create_connection(address, timeout=5) as silent:
            began = time.monotonic()
            # meanwhile, everyone else is served
            assert stdlib_fetch(address, client_ctx(ca)) == GREETING
            assert silent.recv(100) == b""  # the server gave up on us
            assert time.monotonic() - began < 3
        wait_for_log(caplog, "no handshake within 0.3 s")


def test_client_closing_mid_handshake(
    greeting_server: Callable[..., GreetingServer], ca: LabCA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.tls.server")
    server = greeting_server()
    hello = client_hello()
    with serving(server) as address:
        with socket.create_connection(address, timeout=5) as half:
            half.sendall(hello[: len(hello) // 2])
        wait_for_log(caplog, "closed the connection mid-handshake")
        assert stdlib_fetch(address, client_ctx(ca)) == GREETING


def test_connection_limit(greeting_server: Callable[..., GreetingServer], ca: LabCA) -> None:
    server = greeting_server(max_connections=1, handshake_timeout=2.0)
    with serving(server) as address, socket.create_connection(address, timeout=5) as holder:
        deadline = time.monotonic() + 5
        while server.stats.active < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.create_connection(address, timeout=5) as second:
            assert second.recv(100) == b""  # closed at once
        assert server.stats.refused_over_limit == 1
        holder.close()


def test_client_auth_requires_a_certificate_from_the_ca(
    greeting_server: Callable[..., GreetingServer],
    ca: LabCA,
    client_pem: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    server = greeting_server(client_ca=ca.cert_path, greet_client=True)
    with serving(server) as address:
        assert stdlib_fetch(address, client_ctx(ca, client_pem)) == b"Hello, brandon. " + GREETING
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
            stdlib_fetch(address, client_ctx(ca))
        stranger = LabCA.load_or_create(tmp_path / "other-ca")
        foreign = stranger.issue(["x.example.com"], ip_addresses=(), client=True)
        paths = foreign.write(tmp_path, "foreign")
        with pytest.raises(ssl.SSLError, match="UNKNOWN_CA"):
            stdlib_fetch(address, client_ctx(ca, paths))
    assert server.stats.greeted == 1
    assert server.stats.failed_handshakes == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"handshake_timeout": 0}, "the handshake timeout must be above zero"),
        ({"handshake_timeout": float("nan")}, "the handshake timeout must be above zero"),
        ({"write_timeout": -1}, "the write timeout must be above zero"),
        ({"max_connections": 0}, "max_connections must be at least 1"),
    ],
)
def test_bad_arguments_are_config_errors(
    greeting_server: Callable[..., GreetingServer], kwargs: dict[str, float], message: str
) -> None:
    """Issue 10 §3: bad arguments raise ConfigError, never ValueError."""
    with pytest.raises(ConfigError, match=message):
        greeting_server(**kwargs)


def test_cap_plus_ten_connections_then_a_normal_client_is_served(
    greeting_server: Callable[..., GreetingServer], ca: LabCA, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 10 §2: the cap comes from the one connection server, with one overload line."""
    caplog.set_level(logging.INFO)
    server = greeting_server(max_connections=3, handshake_timeout=0.5)
    with serving(server) as address:
        holders = [socket.create_connection(address, timeout=5) for _ in range(3 + 10)]
        try:
            deadline = time.monotonic() + 5
            while server.stats.refused_over_limit < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.stats.refused_over_limit == 10
            # the silent three are dropped at their handshake deadline; then a client is served
            deadline = time.monotonic() + 2
            while server.stats.failed_handshakes < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert stdlib_fetch(address, client_ctx(ca)) == GREETING
        finally:
            for sock in holders:
                sock.close()
    overload = [r for r in caplog.records if "the cap; refusing new ones" in r.getMessage()]
    assert len(overload) == 1, [r.getMessage() for r in overload]
