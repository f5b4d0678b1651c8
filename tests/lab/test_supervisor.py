"""The supervisor: readiness, fail-fast with the original error, unavailable services, stop."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from wirelab.errors import ConnectError, ServiceUnavailable, Timeout
from wirelab.lab.service import LabContext, Service, Started
from wirelab.lab.state import LabState
from wirelab.lab.supervisor import LabThread, Supervisor
from wirelab.net.addresses import listen_tcp


class Echo(Service):
    """A tiny real TCP echo service for the tests."""

    chapter = 0

    def __init__(self, name: str = "echo", port: int = 0) -> None:
        self.name = name  # type: ignore[misc]
        self.fixed_port = port

    async def serve(self, lab: LabContext, started: Started) -> None:
        sock = listen_tcp(lab.bind_host, self.fixed_port)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(await reader.read(100))
                await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            started([lab.endpoint(self, self.name, sock)])
            await asyncio.Event().wait()


class Unavailable(Service):
    name = "missing"
    chapter = 0

    async def serve(self, lab: LabContext, started: Started) -> None:
        raise ServiceUnavailable("frobd is not installed (apt-get install frobd)")


class Never(Service):
    name = "never"
    chapter = 0

    async def serve(self, lab: LabContext, started: Started) -> None:
        await asyncio.Event().wait()


class CrashesLater(Service):
    name = "crashes"
    chapter = 0

    async def serve(self, lab: LabContext, started: Started) -> None:
        started([])
        await asyncio.sleep(0.05)
        raise RuntimeError("boom after start")


class FromThread(Service):
    """Reports readiness from a worker thread, as blocking servers do."""

    name = "threaded"
    chapter = 0

    async def serve(self, lab: LabContext, started: Started) -> None:
        sock = listen_tcp(lab.bind_host, 0)
        try:
            await asyncio.to_thread(started, [lab.endpoint(self, "threaded", sock)])
            await asyncio.Event().wait()
        finally:
            sock.close()


def _ask(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(100)


def test_lab_thread_serves_then_stops_cleanly(tmp_path: Path) -> None:
    thread = LabThread([Echo(), FromThread()], LabContext(tmp_path, ephemeral=True))
    state = thread.start()
    address = state.endpoint("echo").sockaddr
    assert address[0] == "127.0.0.1" and address[1] > 0
    assert _ask(address, b"ping") == b"ping"
    assert state.endpoint("threaded").port > 0
    thread.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


def test_bind_error_is_raised_as_it_is(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        supervisor = Supervisor(
            [Echo("first"), Echo("second", port)], LabContext(tmp_path, ephemeral=True)
        )
        with pytest.raises(ConnectError, match="Address already in use"):
            asyncio.run(supervisor.run())


def test_unavailable_service_is_reported_and_others_run(tmp_path: Path) -> None:
    with LabThread([Echo(), Unavailable()], LabContext(tmp_path, ephemeral=True)) as state:
        assert "frobd is not installed" in state.unavailable["missing"]
        assert _ask(state.endpoint("echo").sockaddr, b"x") == b"x"
        with pytest.raises(Exception, match="unavailable: frobd"):
            state.service("missing")


def test_start_has_a_deadline(tmp_path: Path) -> None:
    context = LabContext(tmp_path, ephemeral=True)
    supervisor = Supervisor([Echo(), Never()], context, start_timeout=0.3)
    with pytest.raises(Timeout, match="never"):
        asyncio.run(supervisor.run())


def test_crash_after_start_leaves_the_others_serving(tmp_path: Path) -> None:
    with LabThread([Echo(), CrashesLater()], LabContext(tmp_path, ephemeral=True)) as state:
        assert _ask(state.endpoint("echo").sockaddr, b"a") == b"a"
        time.sleep(0.2)  # the crash has happened by now
        assert _ask(state.endpoint("echo").sockaddr, b"b") == b"b"


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    with LabThread([Echo()], LabContext(tmp_path, ephemeral=True), state_file=path) as state:
        loaded = LabState.load(path)
        assert loaded == state
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        document = loaded.to_json()
        keys = {"name", "host", "address", "port", "protocol", "tls"}
        assert keys <= set(document["services"][0])
        assert document["accounts"] == [{"user": "brandon", "password": "abc123"}]
        assert Path(document["ca"]).is_file()


class Shrinks(Service):
    """Reports two endpoints, then (while the lab runs) only one, as a service that gave up."""

    name = "shrinks"
    chapter = 0

    async def serve(self, lab: LabContext, started: Started) -> None:
        first, second = listen_tcp(lab.bind_host, 0), listen_tcp(lab.bind_host, 0)
        with first, second:
            started([lab.endpoint(self, "one", first), lab.endpoint(self, "two", second)])
            await asyncio.sleep(0.1)
            started([lab.endpoint(self, "one", first)])
            await asyncio.Event().wait()


def test_a_service_that_reports_again_gets_a_new_state(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    supervisor = Supervisor([Shrinks()], LabContext(tmp_path, ephemeral=True))

    async def main() -> None:
        stop = asyncio.Event()

        def on_ready(state: LabState) -> None:
            seen.append([ep.endpoint for ep in state.endpoints])
            if len(seen) == 2:
                stop.set()

        await asyncio.wait_for(supervisor.run(stop=stop, on_ready=on_ready), 10)

    asyncio.run(main())
    assert seen == [["one", "two"], ["one"]]  # on_ready (which saves the state file) twice
