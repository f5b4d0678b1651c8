"""The deadlock client: against the lab's upper echo, and against independent raw servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from wirelab.errors import Broken, ConnectionRefused, LocalProtocolError, RemoteProtocolError
from wirelab.lab.state import ServiceView
from wirelab.tcp.deadlock import MAX_BYTECOUNT, Stalled, deadlock

RawServer = Callable[[Callable[[socket.socket], None]], tuple[str, int]]

#: Comfortably more than loopback's buffers in both directions hold (about 9 MB on Linux).
BIG = 32 << 20


def upper(lab_tcp: ServiceView) -> tuple[str, int]:
    return lab_tcp.endpoint("upper").sockaddr


@pytest.mark.parametrize("mode", ["naive", "halfclose", "concurrent"])
def test_small_streams_work_in_every_mode(lab_tcp: ServiceView, mode: str) -> None:
    report = deadlock(*upper(lab_tcp), 1000, mode)  # type: ignore[arg-type]
    assert report.bytecount == 1008 and report.received == 1008 and report.verified
    assert report.mode == mode


def test_zero_bytes(lab_tcp: ServiceView) -> None:
    for mode in ("naive", "halfclose", "concurrent"):
        assert deadlock(*upper(lab_tcp), 0, mode).received == 0  # type: ignore[arg-type]


def test_naive_deadlocks_on_big_data_and_the_watchdog_says_so(lab_tcp: ServiceView) -> None:
    began = time.monotonic()
    with pytest.raises(Stalled, match=r"deadlock: no progress for 0.5 s after sending \d+ of") as e:
        deadlock(*upper(lab_tcp), BIG, "naive", stall=0.5)
    assert 0 < e.value.sent < BIG and e.value.received == 0
    assert time.monotonic() - began < 30


def test_halfclose_stalls_too_when_the_data_does_not_fit(lab_tcp: ServiceView) -> None:
    with pytest.raises(Stalled):
        deadlock(*upper(lab_tcp), BIG, "halfclose", stall=0.5)


def test_concurrent_moves_big_data_and_checks_every_byte(lab_tcp: ServiceView) -> None:
    seen: list[tuple[int, int]] = []
    report = deadlock(*upper(lab_tcp), BIG, "concurrent", progress=lambda s, r: seen.append((s, r)))
    assert report.verified and report.received == BIG
    assert seen[-1] == (BIG, BIG)
    assert all(r <= s for s, r in seen)  # never more echo than what was sent


def test_the_lab_keeps_serving_after_a_deadlocked_client(lab_tcp: ServiceView) -> None:
    with pytest.raises(Stalled):
        deadlock(*upper(lab_tcp), BIG, "naive", stall=0.3)
    assert deadlock(*upper(lab_tcp), 4096, "concurrent").verified


def test_a_wrong_echo_is_a_remote_protocol_error(raw_server: RawServer) -> None:
    def lower_case_echo(conn: socket.socket) -> None:
        while data := conn.recv(65536):
            conn.sendall(data)  # not upper-cased

    address = raw_server(lower_case_echo)
    with pytest.raises(RemoteProtocolError, match="echo byte 0 is b'c', expected b'C'"):
        deadlock(*address, 64, "concurrent")


def test_an_echo_cut_short_is_broken(raw_server: RawServer) -> None:
    def half_then_close(conn: socket.socket) -> None:
        got = b""
        while len(got) < 32 and (data := conn.recv(32)):
            got += data
        conn.sendall(b"CAPITALIZE")  # 10 of 32 bytes, then a clean close

    address = raw_server(half_then_close)
    with pytest.raises(Broken, match="closed after echoing 10 of 32 bytes"):
        deadlock(*address, 32, "halfclose")


def test_a_server_that_resets_is_broken(raw_server: RawServer) -> None:
    def reset(conn: socket.socket) -> None:
        conn.recv(16)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    address = raw_server(reset)
    with pytest.raises(Broken):
        deadlock(*address, 1 << 20, "concurrent", stall=5)


def test_an_independent_echo_in_tiny_pieces_is_accepted(raw_server: RawServer) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(7):
            for byte in data.upper():
                conn.sendall(bytes([byte]))

    address = raw_server(trickle)
    assert deadlock(*address, 160, "concurrent").verified


def test_refused_and_bad_counts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(ConnectionRefused, match="refused"):
        deadlock("127.0.0.1", closed, 16)
    with pytest.raises(LocalProtocolError):
        deadlock("127.0.0.1", closed, -1)
    with pytest.raises(LocalProtocolError, match="over the limit"):
        deadlock("127.0.0.1", closed, MAX_BYTECOUNT + 1)
    with pytest.raises(LocalProtocolError, match="unknown mode"):
        deadlock("127.0.0.1", closed, 16, "sideways")  # type: ignore[arg-type]
