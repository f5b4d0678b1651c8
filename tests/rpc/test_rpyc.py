"""The RPyC line counter: the book's client behaviour, confinement and bounds."""

from __future__ import annotations

import socket
import struct
import zlib
from pathlib import Path

import pytest
import rpyc

from wirelab.errors import RemoteProtocolError
from wirelab.rpc.client import count_lines
from wirelab.rpc.rpyc_server import RPyCServer


def book_connect(server: RPyCServer) -> rpyc.Connection:
    """As the book's rpyc_client.py connects (public attributes of its objects allowed)."""
    return rpyc.connect("127.0.0.1", server.address[1], config={"allow_public_attrs": True})


def test_the_books_client_counts_with_callbacks(rpyc_server: RPyCServer, tmp_path: Path) -> None:
    path = tmp_path / "testfile.txt"
    path.write_text("Simple\nis\nbetter\nthan\ncomplex.\n")
    seen: list[str] = []
    conn = book_connect(rpyc_server)
    try:
        with path.open() as fileobj:
            assert conn.root.line_counter(fileobj, seen.append) == 5
    finally:
        conn.close()
    assert seen == ["Simple\n", "is\n", "better\n", "than\n", "complex.\n"]  # ran on our side


def test_an_empty_file_is_answered(rpyc_server: RPyCServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert count_lines("127.0.0.1", rpyc_server.address[1], empty, print) == 0


def test_our_client_exposes_only_the_lines(rpyc_server: RPyCServer, tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_text("a\nb\n")
    seen: list[str] = []
    assert count_lines("127.0.0.1", rpyc_server.address[1], path, seen.append) == 2
    assert seen == ["a\n", "b\n"]


def test_too_many_lines_is_an_error(rpyc_server: RPyCServer, tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("x\n" * 1001)
    with pytest.raises(RemoteProtocolError, match="more than 1000 lines"):
        count_lines("127.0.0.1", rpyc_server.address[1], path, lambda line: None)


@pytest.mark.parametrize("name", ["../rpyc_server.py", "/etc/passwd", "..", ".hidden", ""])
def test_file_access_is_confined(rpyc_server: RPyCServer, name: str) -> None:
    conn = book_connect(rpyc_server)
    try:
        assert conn.root.list_files() == ("testfile.txt",)
        assert conn.root.read_file("testfile.txt").startswith("Simple\n")
        with pytest.raises(ValueError, match="file name"):
            conn.root.read_file(name)
    finally:
        conn.close()


@pytest.mark.parametrize("attr", ["_files", "_limits", "_conn", "exposed_line_counter.__globals__"])
def test_attributes_outside_the_service_are_refused(rpyc_server: RPyCServer, attr: str) -> None:
    conn = book_connect(rpyc_server)
    try:
        target = conn.root
        with pytest.raises(AttributeError):
            for part in attr.split("."):
                target = getattr(target, part)
        assert conn.root.list_files()  # the connection still works
    finally:
        conn.close()


def test_classic_mode_is_never_exposed(rpyc_server: RPyCServer) -> None:
    conn = book_connect(rpyc_server)
    try:
        for name in ("modules", "eval", "execute", "builtins"):
            with pytest.raises(AttributeError):
                getattr(conn, name)
        assert conn.root.get_service_name() == "LINECOUNTER"
    finally:
        conn.close()


def _frame_is_refused(server: RPyCServer, frame: bytes) -> None:
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(frame)
        assert sock.recv(4096) == b""  # closed, nothing said


def test_an_oversized_frame_closes_the_connection(rpyc_server: RPyCServer) -> None:
    _frame_is_refused(rpyc_server, struct.pack("!LB", 0xFFFFFFF0, 0))
    assert count_lines("127.0.0.1", rpyc_server.address[1], Path(__file__), lambda _: None) > 0


def test_a_compressed_bomb_closes_the_connection(rpyc_server: RPyCServer) -> None:
    bomb = zlib.compress(b"\0" * (64 << 20), 9)
    _frame_is_refused(rpyc_server, struct.pack("!LB", len(bomb), 1) + bomb + b"\n")


def test_a_stalled_frame_is_timed_out(rpyc_server: RPyCServer) -> None:
    with socket.create_connection(rpyc_server.address, timeout=5) as sock:
        sock.sendall(struct.pack("!LB", 100, 0) + b"abc")
        assert sock.recv(4096) == b""  # after the 1 s frame timeout of these tests


def test_concurrent_clients_while_one_callback_is_slow(rpyc_server: RPyCServer) -> None:
    import threading
    import time

    path = Path(__file__)
    release = threading.Event()

    def slow(_: str) -> None:
        release.wait(5)

    slow_one = threading.Thread(
        target=count_lines, args=("127.0.0.1", rpyc_server.address[1], path, slow)
    )
    slow_one.start()
    try:
        time.sleep(0.2)  # the slow client is inside its first callback
        started = time.monotonic()
        assert count_lines("127.0.0.1", rpyc_server.address[1], path, lambda _: None) > 0
        assert time.monotonic() - started < 2
    finally:
        release.set()
        slow_one.join(10)


def test_the_cap_and_the_idle_timeout() -> None:
    import time

    from wirelab.rpc.rpyc_server import RPyCLimits, start_rpyc_server

    server = start_rpyc_server(
        "127.0.0.1", 0, limits=RPyCLimits(max_connections=2, idle_timeout=0.5)
    )
    try:
        held = [socket.create_connection(server.address, timeout=5) for _ in range(2)]
        try:
            time.sleep(0.1)  # both are being served
            with socket.create_connection(server.address, timeout=5) as third:
                assert third.recv(16) == b""  # over the cap: closed at once, nothing said
            for sock in held:  # quiet for 0.5 s: closed (after rpyc's own greeting frames)
                while sock.recv(4096):
                    pass
        finally:
            for sock in held:
                sock.close()
        assert server.refused >= 1
        deadline = time.monotonic() + 5  # the server's threads notice the closes on their own
        while server.active >= 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.active < 2, "closed connections still hold the slots"
        assert count_lines("127.0.0.1", server.address[1], Path(__file__), lambda _: None) > 0
    finally:
        server.close()
