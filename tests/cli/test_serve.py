"""The CLI's one ``serve`` helper: a listening line, Ctrl-C or SIGTERM stop it cleanly (exit 0),
a bind conflict is one error, not a traceback."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from wirelab.cli.common import run_server
from wirelab.errors import ConnectError
from wirelab.net.server import ConnectionServer

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from wirelab.cli.common import run_server
    from wirelab.net.server import ConnectionServer

    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()

    run_server(
        lambda: ConnectionServer.open(echo, "127.0.0.1", 0, name="echo"),
        "echo",
        stopped=lambda server: f"stopped after {server.connections} connection(s)",
    )
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_server_runs_until_a_signal_and_stops_cleanly(sig: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        found = re.fullmatch(r"listening at 127\.0\.0\.1:(\d+) \(echo\)\n", line)
        assert found, line
        with socket.create_connection(("127.0.0.1", int(found[1])), timeout=5) as sock:
            sock.sendall(b"hello\n")
            assert sock.recv(10) == b"hello\n"
        child.send_signal(sig)
        rest = child.stderr.read()
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
    assert rest == "stopped after 1 connection(s)\n"


def test_a_bind_conflict_is_a_connect_error() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConnectError, match=f"cannot listen on 127.0.0.1:{port}"):
            run_server(lambda: ConnectionServer.open(echo, "127.0.0.1", port, name="clash"))


def test_bind_port_takes_the_users_port_else_the_documented_default() -> None:
    from wirelab.cli.common import bind_port

    assert bind_port(None, "tcp", "sixteen") == 1060
    assert bind_port("0", "tcp", "sixteen") == 0
    assert bind_port("domain", "dns", "udp", "udp") == 53
