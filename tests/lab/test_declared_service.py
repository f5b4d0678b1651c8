"""A service written as a declaration: endpoints opened in order, reported, closed in reverse."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from wirelab.errors import ConnectError
from wirelab.lab.service import BoundEndpoint, DeclaredService, Endpoint, LabContext
from wirelab.net.addresses import bind_udp
from wirelab.net.server import ConnectionServer


async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def open_upper(host: str, port: int) -> ConnectionServer:
    return await ConnectionServer.open(upper, host, port, name="upper")


async def open_echo(host: str, port: int) -> tuple[asyncio.DatagramTransport, Any]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(_Echo, sock=bind_udp(host, port))


class Demo(DeclaredService):
    name = "demo"
    chapter = 99

    def __init__(self, second_port: int | None = None) -> None:
        self.second_port = second_port

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        if self.second_port is None:
            second = Endpoint("echo", open_echo)
        else:
            port = self.second_port
            second = Endpoint("clash", lambda host, _: open_upper(host, port))
        return (Endpoint("upper", open_upper), second)


def _talk(endpoints: Sequence[BoundEndpoint]) -> None:
    by_name = {ep.endpoint: ep for ep in endpoints}
    with socket.create_connection(by_name["upper"].sockaddr, timeout=5) as sock:
        sock.sendall(b"quiet\n")
        assert sock.recv(10) == b"QUIET\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"ping", by_name["echo"].sockaddr)
        assert sock.recv(10) == b"ping"


def test_a_declared_service_reports_serves_and_closes_its_endpoints(tmp_path: Path) -> None:
    lab = LabContext(state_dir=tmp_path, ephemeral=True)
    reported: list[BoundEndpoint] = []

    async def main() -> None:
        ready = asyncio.Event()

        def started(endpoints: Sequence[BoundEndpoint]) -> None:
            reported.extend(endpoints)
            ready.set()

        task = asyncio.create_task(Demo().serve(lab, started))
        await asyncio.wait_for(ready.wait(), 5)
        await asyncio.to_thread(_talk, reported)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [(ep.name, ep.protocol, ep.host) for ep in reported] == [
        ("demo.upper", "tcp", "example.com"),
        ("demo.echo", "udp", "example.com"),
    ]
    for ep in reported:  # closed: the ports are free again
        kind = socket.SOCK_STREAM if ep.protocol == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(ep.sockaddr)


def test_a_failing_endpoint_closes_those_already_open(tmp_path: Path) -> None:
    lab = LabContext(state_dir=tmp_path, ephemeral=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> None:
            await Demo(second_port=port).serve(lab, lambda endpoints: None)

        with pytest.raises(ConnectError, match=str(port)):
            asyncio.run(main())
    # The leak check (tests/conftest.py) proves the first endpoint's socket was closed.
