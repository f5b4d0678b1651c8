"""Framing by end-of-file: our server with stdlib clients, our client with raw servers."""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wirelab.data.stream import ZEN, open_stream_server, send_stream
from wirelab.errors import LocalProtocolError, RemoteProtocolError, Timeout
from wirelab.lab.state import ServiceView
from wirelab.net.server import ConnectionServer, ServerThread

RawServer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]


def summary_line(data: bytes) -> bytes:
    return b"received %d bytes, sha256 %s\n" % (
        len(data),
        hashlib.sha256(data).hexdigest().encode(),
    )


def stdlib_send(address: tuple[str, int], data: bytes, *, half_close: bool = True) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        return reply


def read_to_eof(conn: socket.socket) -> bytes:
    got = b""
    while data := conn.recv(65536):
        got += data
    return got


@pytest.fixture
def small_stream() -> Iterator[ConnectionServer]:
    with ServerThread(
        lambda: open_stream_server("127.0.0.1", 0, max_size=1000, idle_timeout=0.3)
    ) as srv:
        yield srv


def test_lab_server_summarises_a_stdlib_client(lab_blocks: ServiceView) -> None:
    address = lab_blocks.endpoint("stream").sockaddr
    assert stdlib_send(address, ZEN) == summary_line(ZEN)
    assert stdlib_send(address, b"") == summary_line(b"")
    assert stdlib_send(address, bytes(range(256)) * 40) == summary_line(bytes(range(256)) * 40)


def test_over_the_limit_is_refused_and_the_server_goes_on(small_stream: ConnectionServer) -> None:
    reply = stdlib_send(small_stream.address, b"x" * 5000)
    assert reply == b"error: message over the limit of 1000 bytes\n"
    assert stdlib_send(small_stream.address, b"y" * 1000) == summary_line(b"y" * 1000)


def test_a_quiet_client_is_dropped_and_others_are_served(
    small_stream: ConnectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.data.stream")
    with socket.create_connection(small_stream.address, timeout=5) as quiet:
        quiet.sendall(b"half a message")  # and never the end of file
        assert stdlib_send(small_stream.address, b"ok") == summary_line(b"ok")
        assert read_to_eof(quiet) == b""  # closed by the idle timeout, without a summary
    deadline = time.monotonic() + 5
    while "nothing for" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "nothing for 0.3 s after 14 bytes" in caplog.text


def test_our_client_against_the_lab(lab_blocks: ServiceView) -> None:
    report = send_stream(*lab_blocks.endpoint("stream").sockaddr, ZEN)
    assert report.summary is not None
    assert report.sent == len(ZEN) and report.summary.size == len(ZEN)
    assert report.summary.sha256 == hashlib.sha256(ZEN).hexdigest()
    assert report.to_json()["verified"] is True


def test_a_server_that_answers_nothing_is_not_verified(raw_server: RawServer) -> None:
    """The book's streamer server half-closes at once and never answers: not an error, but
    nothing is verified either."""
    received: list[bytes] = []
    done = threading.Event()

    def book_server(conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_WR)
        received.append(read_to_eof(conn))
        done.set()

    report = send_stream(*raw_server(book_server), ZEN)
    assert done.wait(10), "the book-like server never saw the end of the stream"
    assert report.summary is None and report.verified is False
    assert report.to_json()["verified"] is False and report.to_json()["server_received"] is None
    assert report.to_json()["sent_sha256"] == hashlib.sha256(ZEN).hexdigest()
    assert received == [ZEN]


def test_our_client_against_an_independent_server(raw_server: RawServer) -> None:
    received: list[bytes] = []

    def server(conn: socket.socket) -> None:
        data = read_to_eof(conn)  # works only because the client half-closes
        received.append(data)
        conn.sendall(summary_line(data))

    report = send_stream(*raw_server(server), b"hello, stream")
    assert received == [b"hello, stream"] and report.verified
    assert report.summary is not None and report.summary.size == 13


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (b"received 3 bytes, sha256 " + b"0" * 64 + b"\n", RemoteProtocolError, "we sent 5"),
        (b"error: go away\n", RemoteProtocolError, "the server refused: go away"),
        (b"HTTP/1.0 400 Bad Request\r\n\r\n", RemoteProtocolError, "not a summary"),
        (b"z" * 5000, RemoteProtocolError, "over 512 bytes"),
    ],
)
def test_our_client_checks_the_reply(
    raw_server: RawServer, reply: bytes, error: type[Exception], match: str
) -> None:
    def server(conn: socket.socket) -> None:
        read_to_eof(conn)
        conn.sendall(reply)

    with pytest.raises(error, match=match):
        send_stream(*raw_server(server), b"hello")


def test_our_client_times_out_on_a_silent_server(raw_server: RawServer) -> None:
    def server(conn: socket.socket) -> None:
        read_to_eof(conn)
        time.sleep(1.0)  # say nothing until well after the client gave up

    with pytest.raises(Timeout):
        send_stream(*raw_server(server), b"hello", timeout=0.3)


def test_our_client_refuses_to_send_over_its_limit() -> None:
    with pytest.raises(LocalProtocolError, match="over the limit of 10"):
        send_stream("127.0.0.1", 1, b"x" * 11, max_size=10)


def test_a_reset_mid_stream_costs_only_that_connection(lab_blocks: ServiceView) -> None:
    address = lab_blocks.endpoint("stream").sockaddr
    sock = socket.create_connection(address, timeout=5)
    sock.sendall(b"part of a message")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # an abortive close: the server sees a reset, not end-of-file
    assert stdlib_send(address, b"next") == summary_line(b"next")
