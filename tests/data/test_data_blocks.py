"""Length-prefixed blocks: our server with stdlib clients, our client with raw servers."""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wirelab.data.blocks import BOOK_BLOCKS, open_blocks_server, send_blocks
from wirelab.errors import Broken, LocalProtocolError, RemoteProtocolError
from wirelab.lab.state import ServiceView
from wirelab.net.server import ConnectionServer, ServerThread

RawServer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]
BLOCKS = [b"Beautiful is better than ugly.\n", b"Explicit is better than implicit.\n", b"x"]


def frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        data = sock.recv(size - len(got))
        if not data:
            raise EOFError(f"closed after {len(got)} of {size} bytes")
        got += data
    return got


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack("!I", recv_exactly(sock, 4))
    assert size < 1 << 16
    return recv_exactly(sock, size)


def summary(blocks: list[bytes]) -> bytes:
    data = b"".join(blocks)
    count = f"{len(blocks)} block" + ("" if len(blocks) == 1 else "s")
    size = f"{len(data)} byte" + ("" if len(data) == 1 else "s")
    return f"received {count}, {size}, sha256 {hashlib.sha256(data).hexdigest()}".encode()


def stdlib_blocks(address: tuple[str, int], raw: bytes) -> bytes:
    """Send ``raw`` bytes as they are and read the one reply block."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(raw)
        return read_frame(sock)


@pytest.fixture
def small_blocks() -> Iterator[ConnectionServer]:
    with ServerThread(
        lambda: open_blocks_server("127.0.0.1", 0, max_block=1000, max_total=3000, idle_timeout=0.5)
    ) as srv:
        yield srv


def served(address: tuple[str, int]) -> bool:
    """True when the server still answers a well-formed stream correctly."""
    return stdlib_blocks(address, frame(b"still") + frame(b"")) == summary([b"still"])


def test_lab_server_summarises_a_stdlib_client(lab_blocks: ServiceView) -> None:
    address = lab_blocks.endpoint("blocks").sockaddr
    raw = b"".join(frame(b) for b in BLOCKS) + frame(b"")
    assert stdlib_blocks(address, raw) == summary(BLOCKS)
    assert stdlib_blocks(address, frame(b"")) == summary([])


def test_frames_split_anywhere_are_put_back_together(lab_blocks: ServiceView) -> None:
    raw = b"".join(frame(b) for b in BLOCKS) + frame(b"")
    with socket.create_connection(lab_blocks.endpoint("blocks").sockaddr, timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(raw), 3):
            sock.sendall(raw[i : i + 3])
        assert read_frame(sock) == summary(BLOCKS)


def test_a_4_gib_announcement_is_refused_and_the_server_goes_on(
    lab_blocks: ServiceView,
) -> None:
    address = lab_blocks.endpoint("blocks").sockaddr
    reply = stdlib_blocks(address, b"\xff\xff\xff\xff" + b"some of it")
    assert reply.startswith(b"error: ") and b"4294967295" in reply
    assert served(address)


def test_a_block_over_the_limit_is_refused(small_blocks: ConnectionServer) -> None:
    reply = stdlib_blocks(small_blocks.address, frame(b"x" * 1001))
    assert reply.startswith(b"error: ")
    assert served(small_blocks.address)


def test_too_many_bytes_in_all_are_refused(small_blocks: ConnectionServer) -> None:
    reply = stdlib_blocks(small_blocks.address, frame(b"x" * 1000) * 4)
    assert reply == b"error: more than 3000 bytes in one stream\n"
    assert served(small_blocks.address)


def test_closing_mid_frame_is_one_log_line(
    small_blocks: ConnectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.data.blocks")
    with socket.create_connection(small_blocks.address, timeout=5) as sock:
        sock.sendall(frame(b"whole") + struct.pack("!I", 100) + b"only ten b")
    with socket.create_connection(small_blocks.address, timeout=5) as sock:
        sock.sendall(frame(b"whole"))  # complete blocks, but no end block
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "without the empty end block" not in caplog.text:
        time.sleep(0.01)
    assert "without the empty end block" in caplog.text
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert served(small_blocks.address)


def test_garbage_never_stops_the_server(small_blocks: ConnectionServer) -> None:
    rng = random.Random(5)
    for _ in range(20):
        junk = rng.randbytes(rng.randrange(1, 200))
        with socket.create_connection(small_blocks.address, timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert served(small_blocks.address)


def test_a_quiet_client_is_dropped(small_blocks: ConnectionServer) -> None:
    with socket.create_connection(small_blocks.address, timeout=5) as quiet:
        quiet.sendall(frame(b"one"))
        assert served(small_blocks.address)
        assert quiet.recv(10) == b""  # the idle timeout closed it


def test_our_client_against_the_lab(lab_blocks: ServiceView) -> None:
    report = send_blocks(*lab_blocks.endpoint("blocks").sockaddr, BLOCKS)
    assert report.count == 3 and report.size == sum(map(len, BLOCKS))
    assert report.summary is not None and report.summary.blocks == 3
    assert report.to_json()["verified"] is True


def test_a_server_that_answers_nothing_is_not_verified(raw_server: RawServer) -> None:
    """The book's blocks server half-closes at once and only reads: our client sends the
    book's blocks and succeeds, with nothing verified."""
    got: list[bytes] = []
    done = threading.Event()

    def book_server(conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_WR)
        while block := read_frame(conn):
            got.append(block)
        done.set()

    report = send_blocks(*raw_server(book_server), BOOK_BLOCKS)
    assert done.wait(10), "the book-like server never saw the end of the blocks"
    assert got == list(BOOK_BLOCKS)
    assert report.summary is None and report.verified is False
    assert report.to_json()["verified"] is False and report.to_json()["server_received"] is None


def test_our_client_against_an_independent_server(raw_server: RawServer) -> None:
    got: list[bytes] = []

    def server(conn: socket.socket) -> None:
        while block := read_frame(conn):
            got.append(block)
        conn.sendall(frame(summary(got)))

    report = send_blocks(*raw_server(server), [b"a", b"bc" * 3000])
    assert got == [b"a", b"bc" * 3000] and report.verified
    assert report.summary is not None and report.summary.size == 6001


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (b"\xff\xff\xff\xff", RemoteProtocolError, "4294967295"),  # a 4 GiB announcement
        (struct.pack("!I", 100) + b"cut short", Broken, "closed mid-message"),
        (frame(b"error: nope"), RemoteProtocolError, "the server refused: nope"),
        (frame(summary([b"other"])), RemoteProtocolError, "we sent 1 blocks"),
    ],
)
def test_our_client_checks_the_reply(
    raw_server: RawServer, reply: bytes, error: type[Exception], match: str
) -> None:
    def server(conn: socket.socket) -> None:
        while read_frame(conn):
            pass
        conn.sendall(reply)

    with pytest.raises(error, match=match):
        send_blocks(*raw_server(server), [b"mine"])


def test_our_client_refuses_bad_blocks_before_connecting() -> None:
    with pytest.raises(LocalProtocolError, match="block 2 is empty"):
        send_blocks("127.0.0.1", 1, [b"a", b""])
    with pytest.raises(LocalProtocolError, match="block 1 is over the limit of 4"):
        send_blocks("127.0.0.1", 1, [b"12345"], max_block=4)
