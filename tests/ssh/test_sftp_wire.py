"""SFTP on the wire: block boundaries, reads larger than the window, EOF, and the
coalescing transport the lab server writes through (decision 0162)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import cast

import asyncssh
import pytest

from tests.ssh.conftest import home, running_ssh
from wirelab.lab.service import LabContext
from wirelab.ssh import server as ssh_server
from wirelab.ssh.keys import client_key_file, known_hosts_file

KIB = 1024
#: Around OpenSSH's 32 KiB packets and blocks, its 255 KiB reads (the server's limits), and
#: past the 2 MiB channel window.
SIZES = (
    0, 1, 13, 32 * KIB - 1, 32 * KIB, 32 * KIB + 1, 32 * KIB + 13, 64 * KIB + 13,
    261_119, 261_120, 261_121, 2 * 1024 * KIB + 7,
)  # fmt: skip


def _sftp(lab: LabContext, port: int, batch: str, *options: str) -> None:
    argv = [
        "sftp", *options, "-F", "/dev/null", "-P", str(port),
        "-i", str(client_key_file(lab.state_dir, "brandon")), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts_file(lab.state_dir)}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-b", "-",
        "brandon@127.0.0.1",
    ]  # fmt: skip
    done = subprocess.run(argv, input=batch, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH's sftp is not installed")
@pytest.mark.parametrize("options", [(), ("-B", "32768")], ids=["255-KiB-reads", "32-KiB-reads"])
def test_openssh_sftp_round_trips_sizes_around_block_boundaries(
    lab: LabContext, tmp_path: Path, options: tuple[str, ...]
) -> None:
    payloads = {size: os.urandom(size) for size in SIZES}
    for size, data in payloads.items():
        (tmp_path / f"up-{size}").write_bytes(data)
    puts = "".join(f"put {tmp_path / f'up-{size}'} f-{size}\n" for size in SIZES)
    gets = "".join(f"get f-{size} {tmp_path / f'down-{size}'}\n" for size in SIZES)

    async def go() -> None:
        async with running_ssh(lab) as server:
            await asyncio.to_thread(_sftp, lab, server.port, puts + gets, *options)

    asyncio.run(go())
    for size, data in payloads.items():
        assert (home(lab) / f"f-{size}").read_bytes() == data, f"upload of {size} bytes"
        assert (tmp_path / f"down-{size}").read_bytes() == data, f"download of {size} bytes"


def test_one_read_larger_than_the_window_then_a_partial_block_then_eof(
    lab: LabContext,
) -> None:
    size = 3 * 1024 * KIB + 5  # past asyncssh's 2 MiB window, not a whole number of blocks
    data = os.urandom(size)
    block = 4 * 1024 * KIB  # one SFTP read request (the server's limit), twice the window

    async def go() -> tuple[bytes, bytes, bytes]:
        async with (
            running_ssh(lab) as server,
            asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="brandon",
                client_keys=[str(client_key_file(lab.state_dir, "brandon"))],
                known_hosts=str(known_hosts_file(lab.state_dir)),
                agent_path=None,
                config=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            (home(lab) / "big.bin").write_bytes(data)
            async with sftp.open("big.bin", "rb", block_size=block, max_requests=1) as file:
                whole = cast(bytes, await file.read(block, 0))
                tail = cast(bytes, await file.read(KIB, size - 5))
                past = cast(bytes, await file.read(KIB, size))
            return whole, tail, past

    whole, tail, past = asyncio.run(go())
    assert whole == data  # a short answer only at the end of the file
    assert tail == data[-5:]
    assert past == b""


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


async def _pair() -> tuple[asyncio.Server, list[_Sink], asyncio.Transport]:
    """A loopback server that keeps what it receives, and a client transport to it."""
    loop = asyncio.get_running_loop()
    sinks: list[_Sink] = []

    def sink() -> _Sink:
        sinks.append(_Sink())
        return sinks[-1]

    server = await loop.create_server(sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    while not sinks:
        await asyncio.sleep(0.01)
    return server, sinks, transport


def test_the_writes_of_one_turn_reach_the_socket_as_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def go() -> tuple[list[int], bytes, bytes]:
        server, sinks, transport = await _pair()
        sent: list[int] = []
        real_write = transport.write

        def write(data: bytes) -> None:
            sent.append(len(data))
            real_write(data)

        monkeypatch.setattr(transport, "write", write)
        coalescing = ssh_server._CoalescingTransport(transport)
        pieces = [os.urandom(n) for n in (36, 32_800, 36, 32_800, 13)]
        for piece in pieces:
            coalescing.write(piece)
        assert sent == []  # held until the end of this turn
        assert coalescing.get_write_buffer_size() == sum(map(len, pieces))
        await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        assert sent == [sum(map(len, pieces))]
        coalescing.write(b"last words")
        coalescing.close()  # what is held goes out before the close
        await asyncio.wait_for(sinks[0].closed, 5)
        server.close()
        await server.wait_closed()
        return sent, bytes(sinks[0].data), b"".join(pieces)

    sent, received, expected = asyncio.run(go())
    assert received == expected + b"last words"
    assert sent[-1] == len(b"last words")


def test_the_coalescing_transport_writes_at_the_limit_and_abort_drops_what_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def go() -> tuple[list[int], bytes]:
        server, sinks, transport = await _pair()
        sent: list[int] = []
        real_write = transport.write

        def write(data: bytes) -> None:
            sent.append(len(data))
            real_write(data)

        monkeypatch.setattr(transport, "write", write)
        coalescing = ssh_server._CoalescingTransport(transport)
        chunk = b"x" * (64 * KIB)
        for _ in range(ssh_server.COALESCE_LIMIT // len(chunk)):
            coalescing.write(chunk)
        assert sent == [ssh_server.COALESCE_LIMIT]  # written at once at the limit
        await asyncio.sleep(0.2)
        coalescing.write(b"never sent")
        coalescing.abort()
        await asyncio.wait_for(sinks[0].closed, 5)
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return sent, bytes(sinks[0].data)

    sent, received = asyncio.run(go())
    assert sent == [ssh_server.COALESCE_LIMIT]
    assert b"never sent" not in received


def test_lab_connections_write_through_the_coalescing_transport(
    lab: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every packet of a session goes through it, and the session works."""
    flushed: list[int] = []
    real_flush = ssh_server._CoalescingTransport._flush

    def flush(self: ssh_server._CoalescingTransport) -> None:
        flushed.append(self.get_write_buffer_size())
        real_flush(self)

    monkeypatch.setattr(ssh_server._CoalescingTransport, "_flush", flush)

    async def go() -> str:
        async with (
            running_ssh(lab) as server,
            asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="brandon",
                client_keys=[str(client_key_file(lab.state_dir, "brandon"))],
                known_hosts=str(known_hosts_file(lab.state_dir)),
                agent_path=None,
                config=None,
            ) as conn,
        ):
            done = await conn.run("show a b", check=True)
            return str(done.stdout)

    output = asyncio.run(go())
    assert "Arguments: ['a', 'b']" in output
    assert flushed and max(flushed) > 0
