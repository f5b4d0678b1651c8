"""Stream adapters over real sockets: socketpairs, TCP on 127.0.0.1 port 0, asyncio streams."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wirelab.errors import (
    Broken,
    Closed,
    ConnectError,
    ConnectionRefused,
    LocalProtocolError,
    NameResolutionError,
    RemoteProtocolError,
    Timeout,
    TransportError,
)
from wirelab.net.framing import Framer, LengthPrefixFramer
from wirelab.net.streams import (
    FramedSocket,
    map_os_error,
    read_message,
    recv_exactly,
    recv_until_eof,
)

ZEN = [b"Beautiful is better than", b"Simple is better than", b"", b"Flat is better than"]
FRAMERS: list[Callable[[], Framer]] = [
    lambda: LengthPrefixFramer(),
    lambda: LengthPrefixFramer(max_size=4 << 20),
]
JOIN = 5.0  # every thread join and every blocking call in these tests has a bound


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(JOIN)
        right.settimeout(JOIN)
        yield left, right


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A real TCP connection over loopback: (client, server side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=JOIN)
        server, _ = listener.accept()
    with client, server:
        server.settimeout(JOIN)
        yield client, server


def in_thread(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, name="test-peer", daemon=True)
    thread.start()
    return thread


# --- recv_exactly / recv_until_eof ---------------------------------------------------------


def test_recv_exactly_gathers_a_slow_peer_s_pieces(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair

    def slow_peer() -> None:
        for piece in (b"ab", b"c", b"defghij", b"klmnop"):
            right.sendall(piece)
            time.sleep(0.01)

    thread = in_thread(slow_peer)
    try:
        assert recv_exactly(left, 16) == b"abcdefghijklmnop"
    finally:
        thread.join(JOIN)


def test_recv_exactly_early_close_is_broken(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.sendall(b"12345")
    right.close()
    with pytest.raises(Broken, match="peer closed after 5 of 16 bytes"):
        recv_exactly(left, 16)


def test_recv_exactly_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    left.settimeout(0.2)
    right.sendall(b"1234")
    began = time.monotonic()
    with pytest.raises(Timeout, match=r"after 4 of 16 bytes\): timed out") as info:
        recv_exactly(left, 16)
    assert 0.15 < time.monotonic() - began < 2.0
    assert isinstance(info.value.__cause__, TimeoutError)


def test_recv_exactly_reset_is_broken(tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = tcp_pair
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    server.close()  # linger 0: the kernel sends RST instead of FIN
    with pytest.raises(Broken, match="ECONNRESET") as info:
        recv_exactly(client, 4)
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_recv_exactly_refuses_sizes_over_the_limit(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    with pytest.raises(RemoteProtocolError, match="limit is 10"):
        recv_exactly(pair[0], 11, max_size=10)
    assert recv_exactly(pair[0], 0) == b""


def test_recv_until_eof(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.sendall(b"x" * 10)
    right.shutdown(socket.SHUT_WR)
    assert recv_until_eof(left, max_size=10) == b"x" * 10


def test_recv_until_eof_is_bounded(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.sendall(b"x" * 11)
    with pytest.raises(RemoteProtocolError, match="more than 10 bytes"):
        recv_until_eof(left, max_size=10)  # fails without waiting for the close


# --- FramedSocket --------------------------------------------------------------------------


@pytest.mark.parametrize("make", FRAMERS)
def test_framed_socket_round_trip_over_socketpair(
    pair: tuple[socket.socket, socket.socket], make: Callable[[], Framer]
) -> None:
    left, right = pair
    sender, receiver = FramedSocket(left, make()), FramedSocket(right, make())
    for message in ZEN:
        sender.send_message(message)
    left.shutdown(socket.SHUT_WR)
    assert list(receiver) == ZEN
    assert receiver.recv_message() is None  # and again: END is sticky


@pytest.mark.parametrize("make", FRAMERS)
def test_framed_socket_round_trip_over_tcp(
    tcp_pair: tuple[socket.socket, socket.socket], make: Callable[[], Framer]
) -> None:
    client, server = tcp_pair
    big = bytes(range(256)).replace(b"?", b"!") * 2000  # 512 KB: many segments, many recvs

    def echo_upper() -> None:
        framed = FramedSocket(server, make())
        for message in framed:
            framed.send_message(message.upper())
        server.shutdown(socket.SHUT_WR)

    thread = in_thread(echo_upper)
    try:
        framed = FramedSocket(client, make())
        for message in [*ZEN, big]:
            framed.send_message(message)
            assert framed.recv_message() == message.upper()
        client.shutdown(socket.SHUT_WR)
        assert framed.recv_message() is None
    finally:
        thread.join(JOIN)
    assert not thread.is_alive()


def test_framed_socket_eof_mid_message_is_broken(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.sendall(LengthPrefixFramer().frame(b"whole") + struct.pack("!I", 100) + b"part")
    right.close()
    framed = FramedSocket(left, LengthPrefixFramer())
    assert framed.recv_message() == b"whole"
    with pytest.raises(Broken, match="peer closed mid-message") as info:
        framed.recv_message()
    assert isinstance(info.value.__cause__, RemoteProtocolError)


def test_framed_socket_over_limit_stays_a_protocol_error(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    right.sendall(struct.pack("!I", 2**31))  # the book's blocks.py would try to read 2 GiB
    right.close()
    framed = FramedSocket(left, LengthPrefixFramer(max_size=1024))
    with pytest.raises(RemoteProtocolError, match="limit is 1024"):
        framed.recv_message()


def test_framed_socket_refuses_to_send_what_cannot_be_framed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    framed = FramedSocket(pair[0], LengthPrefixFramer(max_size=3))
    with pytest.raises(LocalProtocolError):
        framed.send_message(b"Why?")


def test_send_to_a_closed_peer_is_broken(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    right.close()
    with pytest.raises(Broken, match="EPIPE") as info:
        FramedSocket(left, LengthPrefixFramer()).send_message(b"anyone there?")
    assert isinstance(info.value.__cause__, BrokenPipeError)


def test_using_our_closed_socket_is_closed() -> None:
    left, right = socket.socketpair()
    right.close()
    left.close()
    with pytest.raises(Closed):
        recv_exactly(left, 1)


# --- asyncio -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", FRAMERS)
def test_asyncio_round_trip(make: Callable[[], Framer]) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = make()
        while (message := await read_message(reader, framer)) is not None:
            writer.write(framer.frame(message[::-1]))
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> list[bytes | None]:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        async with server:
            host, port = server.sockets[0].getsockname()[:2]
            reader, writer = await asyncio.open_connection(host, port)
            framer, replies = make(), []
            async with asyncio.timeout(JOIN):
                for message in ZEN:
                    writer.write(framer.frame(message))
                    replies.append(await read_message(reader, framer))
                writer.write_eof()
                replies.append(await read_message(reader, framer))
            writer.close()
            await writer.wait_closed()
        return replies

    assert asyncio.run(main()) == [m[::-1] for m in ZEN] + [None]


def test_asyncio_eof_mid_message_is_broken() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        framer = LengthPrefixFramer()
        reader.feed_data(framer.frame(b"Beautiful is better than") + framer.frame(b"Simple")[:7])
        reader.feed_eof()
        assert await read_message(reader, framer) == b"Beautiful is better than"
        with pytest.raises(Broken, match="peer closed mid-message"):
            await read_message(reader, framer)

    asyncio.run(main())


# --- map_os_error ---------------------------------------------------------------------------


def test_map_os_error_on_a_real_refused_connect() -> None:
    with socket.socket() as bound, socket.socket() as probe:
        bound.bind(("127.0.0.1", 0))  # bound, never listening: the kernel answers with RST
        probe.settimeout(JOIN)
        with pytest.raises(OSError) as raised:
            probe.connect(bound.getsockname())
    error = map_os_error(raised.value, "connecting to the test port")
    assert isinstance(error, ConnectionRefused)
    assert error.__cause__ is raised.value
    assert str(error).startswith("network failure: connecting to the test port: ")


def test_map_os_error_on_a_real_name_failure() -> None:
    with pytest.raises(OSError) as raised:
        socket.getaddrinfo("127.0.0.1", "no-such-service")  # answered locally, no DNS
    assert isinstance(map_os_error(raised.value, "looking up"), NameResolutionError)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError("timed out"), Timeout),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), Timeout),
        (OSError(errno.ECONNREFUSED, "Connection refused"), ConnectionRefused),
        (OSError(errno.ECONNRESET, "Connection reset by peer"), Broken),
        (OSError(errno.EPIPE, "Broken pipe"), Broken),
        (OSError(errno.ECONNABORTED, "Software caused connection abort"), Broken),
        (OSError(errno.EBADF, "Bad file descriptor"), Closed),
        (OSError(errno.EHOSTUNREACH, "No route to host"), ConnectError),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), ConnectError),
        (OSError(errno.EMFILE, "Too many open files"), TransportError),
        (OSError("no errno at all"), TransportError),
    ],
)
def test_map_os_error_table(exc: OSError, kind: type[TransportError]) -> None:
    error = map_os_error(exc, "doing it")
    assert type(error) is kind
    assert error.__cause__ is exc
    assert str(error).startswith("network failure: doing it: ")
