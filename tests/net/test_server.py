"""The one connection server: its cap, idle timeout and one overload line, on real sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from wirelab.errors import ConfigError, ConnectError
from wirelab.net.server import (
    ConnectionServer,
    OverloadLog,
    ServerThread,
    close_listener,
    listener_socket,
)

CAP = 5


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo every line until end-of-file."""
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()


async def busy_refusal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421 too busy\r\n")
    await writer.drain()


def served(address: tuple[str, int], text: bytes = b"ping\n", timeout: float = 2.0) -> bool:
    """True if a normal client gets its line echoed within ``timeout`` seconds."""
    with socket.create_connection(address, timeout=timeout) as sock:
        got = b""
        try:
            sock.sendall(text)
            while not got.endswith(b"\n"):
                chunk = sock.recv(100)
                if not chunk:
                    return False
                got += chunk
        except ConnectionResetError:  # turned away over the cap
            return False
        return got == text


def closed_at_once(sock: socket.socket, within: float = 2.0) -> bytes:
    """What ``sock`` reads before the server closes it; fails if it stays open ``within`` s."""
    sock.settimeout(within)
    got = b""
    try:
        while chunk := sock.recv(100):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def overload_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "wirelab.net.server" and "the cap" in r.getMessage()
    ]


@pytest.fixture
def capped() -> Iterator[ConnectionServer]:
    async def start() -> ConnectionServer:
        return await ConnectionServer.open(
            echo, "127.0.0.1", 0, name="capped", max_connections=CAP, idle_timeout=30.0
        )

    with ServerThread(start) as server:
        yield server


def test_cap_plus_ten_connections_are_turned_away_and_the_server_goes_on(
    capped: ConnectionServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.net.server")
    with ExitStack() as stack:
        holders = [
            stack.enter_context(socket.create_connection(capped.address, timeout=5))
            for _ in range(CAP)
        ]
        for holder in holders:  # each one really is being served
            holder.sendall(b"hold\n")
            assert holder.recv(10) == b"hold\n"
        extra = [
            stack.enter_context(socket.create_connection(capped.address, timeout=5))
            for _ in range(10)
        ]
        started = time.monotonic()
        for sock in extra:
            assert closed_at_once(sock) == b""
        assert time.monotonic() - started < 2.0
        assert capped.refused == 10
        assert capped.active == CAP
        for holder in holders:  # the served ones were not touched
            holder.sendall(b"still\n")
            assert holder.recv(10) == b"still\n"
        holders[0].close()
        deadline = time.monotonic() + 2.0
        while capped.active >= CAP and time.monotonic() < deadline:
            time.sleep(0.01)
        assert served(capped.address)
    assert len(overload_lines(caplog)) == 1
    assert "(10 refused" not in overload_lines(caplog)[0]  # the line came with the first one


def test_a_full_server_serves_a_normal_client_once_the_idle_ones_time_out() -> None:
    async def start() -> ConnectionServer:
        return await ConnectionServer.open(
            echo, "127.0.0.1", 0, name="idle-capped", max_connections=CAP, idle_timeout=0.5
        )

    with ServerThread(start) as server, ExitStack() as stack:
        for _ in range(CAP + 10):
            stack.enter_context(socket.create_connection(server.address, timeout=5))
        deadline = time.monotonic() + 4.0  # 0.5 s idle + one watch; slack for a busy machine
        while not served(server.address):
            assert time.monotonic() < deadline, "a normal client was not served within 4 s"
            time.sleep(0.1)
        assert server.idle_closed >= CAP
        assert server.refused >= 10


def test_the_protocol_refusal_reaches_the_client_over_the_cap() -> None:
    async def start() -> ConnectionServer:
        return await ConnectionServer.open(
            echo, "127.0.0.1", 0, name="polite", max_connections=1, on_overload=busy_refusal
        )

    with ServerThread(start) as server, socket.create_connection(server.address) as holder:
        holder.sendall(b"a\n")
        assert holder.recv(10) == b"a\n"
        with socket.create_connection(server.address, timeout=5) as late:
            assert closed_at_once(late) == b"421 too busy\r\n"
        holder.sendall(b"b\n")
        assert holder.recv(10) == b"b\n"


def test_an_idle_connection_is_closed_and_a_talking_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.net.server")

    async def start() -> ConnectionServer:
        return await ConnectionServer.open(echo, "127.0.0.1", 0, name="idle", idle_timeout=0.4)

    with ServerThread(start) as server:
        with (
            socket.create_connection(server.address, timeout=5) as quiet,
            socket.create_connection(server.address, timeout=5) as talker,
        ):
            started = time.monotonic()
            for _ in range(8):  # 1.2 s of talk, a byte every 0.15 s: never idle for 0.4 s
                talker.sendall(b"x\n")
                assert talker.recv(10) == b"x\n"
                time.sleep(0.15)
            assert closed_at_once(quiet, within=0.1) == b""
            assert time.monotonic() - started < 2.0
            talker.sendall(b"y\n")
            assert talker.recv(10) == b"y\n"
        assert server.idle_closed == 1
    idle = [r.getMessage() for r in caplog.records if "moved no byte" in r.getMessage()]
    assert len(idle) == 1


def test_one_overload_line_per_burst() -> None:
    log = OverloadLog(period=0.3)
    counts = [log.event() for _ in range(50)]
    assert counts[0] == 1
    assert counts[1:] == [None] * 49
    time.sleep(0.35)
    assert log.event() == 50  # the second line stands for the 49 quiet ones and itself
    assert log.lines == 2


def test_limits_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        ConnectionServer(echo, name="x", max_connections=0)
    with pytest.raises(ConfigError, match="idle timeout"):
        ConnectionServer(echo, name="x", idle_timeout=0)


def test_a_taken_port_is_a_connect_error_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def start() -> ConnectionServer:
            return await ConnectionServer.open(echo, "127.0.0.1", port, name="clash")

        with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
            ServerThread(start).start()


def test_listener_helpers_understand_every_opener_shape() -> None:
    async def main() -> None:
        server = await ConnectionServer.open(echo, "127.0.0.1", 0, name="shapes")
        loop = asyncio.get_running_loop()
        pair = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        plain = await asyncio.start_server(echo, "127.0.0.1", 0)
        for opened, kind in ((server, socket.SOCK_STREAM), (pair, socket.SOCK_DGRAM)):
            assert listener_socket(opened).type == kind
        assert listener_socket(plain).getsockname()[1] > 0
        for opened in (server, pair, plain):
            await close_listener(opened)
        assert pair[0].is_closing()

    asyncio.run(main())


def test_evict_idlest_serves_a_new_client_when_quiet_ones_hold_every_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.net.server")

    async def start() -> ConnectionServer:
        return await ConnectionServer.open(
            echo, "127.0.0.1", 0, name="evicting", max_connections=CAP, evict_idlest=True
        )

    with ServerThread(start) as server, ExitStack() as stack:
        holders = [
            stack.enter_context(socket.create_connection(server.address, timeout=5))
            for _ in range(CAP)
        ]
        for holder in holders[1:]:  # all but the first show they are alive
            time.sleep(0.02)
            holder.sendall(b"alive\n")
            assert holder.recv(10) == b"alive\n"
        started = time.monotonic()
        assert served(server.address)  # at once: no idle timeout needed
        assert time.monotonic() - started < 1.0
        assert closed_at_once(holders[0]) == b""  # the quietest made room
        for holder in holders[1:]:
            holder.sendall(b"still\n")
            assert holder.recv(10) == b"still\n"
        assert server.evicted == 1 and server.refused == 0
    assert len([m for m in overload_lines(caplog) if "closing the idlest" in m]) == 1


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A download: send a line every 0.05 s, read nothing."""
    for n in range(40):
        writer.write(b"%d\n" % n)
        await writer.drain()
        await asyncio.sleep(0.05)


def test_a_server_that_only_sends_to_a_fast_reader_is_not_idle() -> None:
    # The reader keeps our write buffer empty, so only the writes themselves show progress.
    async def start() -> ConnectionServer:
        return await ConnectionServer.open(trickle, "127.0.0.1", 0, name="dl", idle_timeout=0.4)

    with ServerThread(start) as server, socket.create_connection(server.address) as sock:
        got = closed_at_once(sock, within=5.0)  # reads until the server ends the download
        assert got.endswith(b"39\n"), got[-20:]
        assert server.idle_closed == 0
