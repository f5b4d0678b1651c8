"""The sixteen client: against the lab, and against independent raw-socket servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from wirelab.errors import (
    Broken,
    ConnectionRefused,
    LocalProtocolError,
    NameResolutionError,
    Timeout,
)
from wirelab.lab.state import ServiceView
from wirelab.tcp.client import exchange

RawServer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]


def read16(conn: socket.socket) -> bytes:
    got = b""
    while len(got) < 16 and (data := conn.recv(16 - len(got))):
        got += data
    return got


def test_against_the_lab(lab_tcp: ServiceView) -> None:
    host, port = lab_tcp.endpoint("sixteen").sockaddr
    reply = exchange(host, port)
    assert reply.reply == b"Farewell, client" and reply.text == "Farewell, client"
    assert reply.server == f"{host}:{port}"
    assert reply.local.startswith("127.0.0.1:") and reply.local != reply.server
    assert reply.to_json()["reply"] == "Farewell, client"


def test_a_reply_in_one_byte_pieces_is_put_back_together(raw_server: RawServer) -> None:
    seen: list[bytes] = []

    def trickle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seen.append(read16(conn))
        for byte in b"Farewell, client":
            conn.sendall(bytes([byte]))
            time.sleep(0.002)

    reply = exchange(*raw_server(trickle), b"0123456789abcdef")
    assert reply.reply == b"Farewell, client"
    assert seen == [b"0123456789abcdef"]


def test_a_server_that_closes_early_is_broken(raw_server: RawServer) -> None:
    def short(conn: socket.socket) -> None:
        read16(conn)
        conn.sendall(b"Farewell")

    with pytest.raises(Broken):
        exchange(*raw_server(short))


def test_a_silent_server_times_out(raw_server: RawServer) -> None:
    def silent(conn: socket.socket) -> None:
        read16(conn)
        conn.recv(1)  # waits for the client to give up and close

    began = time.monotonic()
    with pytest.raises(Timeout):
        exchange(*raw_server(silent), timeout=0.3)
    assert time.monotonic() - began < 5


def test_a_message_must_be_sixteen_bytes() -> None:
    with pytest.raises(LocalProtocolError, match="exactly 16 bytes, not 5"):
        exchange("127.0.0.1", 1, b"hello")


def test_refused_and_unresolvable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(ConnectionRefused, match="refused"):
        exchange("127.0.0.1", closed)
    with pytest.raises(NameResolutionError, match="name service failure"):
        exchange("no-such-host.invalid", 1060)
