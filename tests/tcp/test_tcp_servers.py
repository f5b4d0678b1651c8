"""Our chapter 3 servers, driven by independent stdlib socket clients on loopback."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from wirelab.lab.state import ServiceView
from wirelab.net.server import ConnectionServer, ServerThread
from wirelab.tcp.server import UpperSettings, open_sixteen_server, open_upper_server


def recv_all(sock: socket.socket, limit: int = 1 << 26) -> bytes:
    """Read until the server closes (bounded)."""
    parts = []
    size = 0
    while size <= limit:
        data = sock.recv(65536)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def ask(address: tuple[str, int], message: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(message)
        return recv_all(sock)


@pytest.fixture
def quick_sixteen() -> Iterator[ConnectionServer]:
    """A sixteen server of our own with a short idle timeout."""
    with ServerThread(lambda: open_sixteen_server("127.0.0.1", 0, idle_timeout=0.3)) as srv:
        yield srv


@pytest.fixture
def small_upper() -> Iterator[ConnectionServer]:
    """An upper server with a 4 KiB per-connection limit and a short idle timeout."""
    settings = UpperSettings(max_bytes=4096, idle_timeout=0.5)
    with ServerThread(lambda: open_upper_server("127.0.0.1", 0, settings)) as srv:
        yield srv


def test_lab_sixteen_answers_a_stdlib_client(lab_tcp: ServiceView) -> None:
    assert ask(lab_tcp.endpoint("sixteen").sockaddr, b"Hi there, server") == b"Farewell, client"


def test_the_server_reads_exactly_sixteen_whatever_the_pieces(lab_tcp: ServiceView) -> None:
    with socket.create_connection(lab_tcp.endpoint("sixteen").sockaddr, timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"0123456789abcdef":
            sock.send(bytes([byte]))
        assert recv_all(sock) == b"Farewell, client"


def test_extra_bytes_after_sixteen_are_not_read_as_a_second_message(
    lab_tcp: ServiceView,
) -> None:
    reply = ask(lab_tcp.endpoint("sixteen").sockaddr, b"Hi there, server" * 2)
    assert reply == b"Farewell, client"


def test_each_connection_is_logged_with_its_socket_name_and_peer_name(
    quick_sixteen: ConnectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.tcp.server")
    with socket.create_connection(quick_sixteen.address, timeout=5) as sock:
        me = "{}:{}".format(*sock.getsockname()[:2])
        sock.sendall(b"Hi there, server")
        assert recv_all(sock) == b"Farewell, client"
    server_end = "{}:{}".format(*quick_sixteen.address)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "reply sent" not in caplog.text:
        time.sleep(0.01)
    assert f"socket name {server_end}, peer name {me}" in caplog.text
    assert "incoming sixteen-octet message b'Hi there, server'" in caplog.text


def test_early_close_is_one_log_line_and_the_server_goes_on(
    quick_sixteen: ConnectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.tcp.server")
    with socket.create_connection(quick_sixteen.address, timeout=5) as sock:
        sock.sendall(b"Hi th")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""  # the server closes without an answer
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "peer closed" not in caplog.text:
        time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if "peer closed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].endswith("peer closed after 5 of 16 bytes")
    assert ask(quick_sixteen.address, b"Hi there, server") == b"Farewell, client"


def test_a_stalled_client_does_not_block_others_and_is_dropped_when_idle(
    quick_sixteen: ConnectionServer,
) -> None:
    with socket.create_connection(quick_sixteen.address, timeout=5) as stalled:
        stalled.sendall(b"Hi")
        for _ in range(3):
            assert ask(quick_sixteen.address, b"Hi there, server") == b"Farewell, client"
        began = time.monotonic()
        assert recv_all(stalled) == b""  # the idle timeout (0.3 s) closed it
        assert time.monotonic() - began < 4


def test_many_clients_at_once(quick_sixteen: ConnectionServer) -> None:
    socks = [socket.create_connection(quick_sixteen.address, timeout=5) for _ in range(20)]
    try:
        for sock in reversed(socks):  # answer order does not follow connection order
            sock.sendall(b"Hi there, server")
            assert recv_all(sock) == b"Farewell, client"
    finally:
        for sock in socks:
            sock.close()


def test_listener_has_reuseaddr(quick_sixteen: ConnectionServer) -> None:
    assert quick_sixteen.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)


def test_lab_upper_echoes_upper_case_after_half_close(lab_tcp: ServiceView) -> None:
    with socket.create_connection(lab_tcp.endpoint("upper").sockaddr, timeout=5) as sock:
        sock.sendall(b"capitalize this! \xff\x00 and 123")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"CAPITALIZE THIS! \xff\x00 AND 123"


def test_upper_limit_closes_only_that_connection(small_upper: ConnectionServer) -> None:
    with socket.create_connection(small_upper.address, timeout=5) as sock:
        try:
            sock.sendall(b"x" * 10_000)
            sock.shutdown(socket.SHUT_WR)
            got = recv_all(sock)
        except ConnectionResetError:
            got = b""
        assert len(got) <= 4096  # never more than the limit comes back
    assert ask_upper(small_upper.address, b"still here") == b"STILL HERE"


def test_upper_closes_an_idle_client(small_upper: ConnectionServer) -> None:
    with socket.create_connection(small_upper.address, timeout=5) as sock:
        sock.sendall(b"abc")
        time.sleep(1.0)  # idle timeout is 0.5 s: the server waits for more, then gives up
        assert recv_all(sock) == b"ABC"
    assert ask_upper(small_upper.address, b"ok") == b"OK"


def ask_upper(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)


def test_closing_the_server_closes_its_connections() -> None:
    thread = ServerThread(lambda: open_sixteen_server("127.0.0.1", 0))
    server = thread.start()
    client = socket.create_connection(server.address, timeout=5)
    try:
        client.sendall(b"Hi")
        deadline = time.monotonic() + 5
        while server.active == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        thread.stop()
        assert recv_all(client) == b""
        assert server.active == 0
    finally:
        client.close()
        thread.stop()


def test_a_bind_error_reaches_the_caller() -> None:
    with ServerThread(lambda: open_sixteen_server("127.0.0.1", 0)) as first:
        port = first.address[1]
        with pytest.raises(Exception, match="cannot listen"):
            ServerThread(lambda: open_sixteen_server("127.0.0.1", port)).start()


def test_a_reset_mid_message_costs_only_that_connection(lab_tcp: ServiceView) -> None:
    address = lab_tcp.endpoint("sixteen").sockaddr
    sock = socket.create_connection(address, timeout=5)
    sock.sendall(b"Hi th")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # an abortive close: the server sees a reset, not end-of-file
    assert ask(address, b"Hi there, server") == b"Farewell, client"


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_loopback() -> None:
    from wirelab.tcp.client import exchange

    try:
        thread = ServerThread(lambda: open_sixteen_server("::1", 0))
        server = thread.start()
    except Exception as exc:  # a machine without ::1
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        host, port = server.address
        assert host == "::1"
        reply = exchange("::1", port)
        assert reply.reply == b"Farewell, client"
        assert reply.server == f"[::1]:{port}" and reply.local.startswith("[::1]:")
    finally:
        thread.stop()
