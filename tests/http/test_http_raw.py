"""``raw_get``: h11 over a bare socket against the lab's gunicorn and against hostile peers."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.conftest import Behaviour
from wirelab.errors import Broken, ConfigError, RemoteProtocolError, Timeout
from wirelab.http.raw import raw_get

from .conftest import Www

Start = Callable[[Behaviour], tuple[str, int]]


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_plain_http_bytes_are_kept_exactly(www: Www) -> None:
    exchange = raw_get(f"{www.http}/stream/2")
    assert exchange.sent.startswith(b"GET /stream/2 HTTP/1.1\r\nHost: www.example.com:")
    assert exchange.sent.endswith(b"\r\n\r\n")
    assert exchange.received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert exchange.framing == "chunked"
    assert b"\r\n0\r\n\r\n" in exchange.received  # the chunked trailer crossed as it was
    assert exchange.body.count(b"\n") == 2
    assert exchange.body in exchange.received or exchange.body.split(b"\n")[0] in exchange.received


def test_https_with_the_lab_ca(www: Www) -> None:
    exchange = raw_get(f"{www.https}/bytes/64")
    assert exchange.status == 200 and len(exchange.body) == 64
    assert exchange.received.endswith(exchange.body)
    assert exchange.framing == "Content-Length: 64"


def test_server_closing_without_answer(raw_server: Start) -> None:
    def mute(conn: socket.socket) -> None:
        _read_head(conn)

    host, port = raw_server(mute)
    with pytest.raises(RemoteProtocolError, match="without an answer"):
        raw_get(f"http://{host}:{port}/", timeout=5)


def test_server_closing_mid_body(raw_server: Start) -> None:
    def short(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")

    host, port = raw_server(short)
    with pytest.raises(RemoteProtocolError, match="middle of the body"):
        raw_get(f"http://{host}:{port}/", timeout=5)


def test_malformed_response(raw_server: Start) -> None:
    def garbage(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    host, port = raw_server(garbage)
    with pytest.raises(RemoteProtocolError, match=r"not a valid HTTP/1\.1 response"):
        raw_get(f"http://{host}:{port}/", timeout=5)


def test_oversized_head_is_bounded(raw_server: Start) -> None:
    def endless(conn: socket.socket) -> None:
        _read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            conn.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")

    host, port = raw_server(endless)
    with pytest.raises(RemoteProtocolError):
        raw_get(f"http://{host}:{port}/", timeout=5)


def test_silent_server_times_out(raw_server: Start) -> None:
    def silent(conn: socket.socket) -> None:
        _read_head(conn)
        conn.recv(1)  # until the client gives up and closes

    host, port = raw_server(silent)
    with pytest.raises(Timeout):
        raw_get(f"http://{host}:{port}/", timeout=0.5)


def test_reset_is_broken(raw_server: Start) -> None:
    def reset(conn: socket.socket) -> None:
        _read_head(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    host, port = raw_server(reset)
    with pytest.raises((Broken, RemoteProtocolError)):
        raw_get(f"http://{host}:{port}/", timeout=5)


@pytest.mark.parametrize("url", ["ftp://x/", "http:///nohost", "http://x:99999/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        raw_get(url)


def test_bad_method() -> None:
    with pytest.raises(ConfigError):
        raw_get("http://127.0.0.1:1/", method="G E T")
