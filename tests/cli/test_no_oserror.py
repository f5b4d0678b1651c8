"""No command leaks an ``OSError``: a closed port, a reset, a bind conflict and a missing file
are each one line on stderr and exit 1, with no traceback and no raw ``[Errno ...]``.

The CLI's top level catches only :class:`~wirelab.errors.WirelabError`; these prove the seams
map the operating system's errors before they get there. Every ``client`` and every ``serve``
of the command tree is tried, so a new chapter's commands join without editing this file.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.tree import COMMANDS, verb_commands
from tests.conftest import accept_loop, run_wirelab

MISSING = "/nonexistent/wirelab/missing.pem"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with no lab running (so nothing falls back to a lab's address)."""
    found = {k: v for k, v in os.environ.items() if k not in ("WIRELAB_DEBUG", "COLUMNS")}
    found["WIRELAB_HOME"] = str(tmp_path / "home")
    return found


@pytest.fixture
def closed_port() -> int:
    """A TCP and UDP port number nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port held by us: listening on TCP and bound on UDP (without SO_REUSEADDR)."""
    tcp = socket.socket()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with tcp, udp:
        for _ in range(20):
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                tcp.close()
                tcp = socket.socket()
                continue
            break
        tcp.listen()
        yield int(port)


def reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a reset, not an end of file."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A server that accepts every connection and resets it at once."""
    with accept_loop(reset) as (_, port):
        yield port


def check_one_line(args: list[str], env: dict[str, str]) -> None:
    done = run_wirelab(*args, env=env, timeout=30)
    shown = f"wirelab {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
    assert done.returncode == 1, shown
    assert "Traceback" not in done.stderr, shown
    assert "[Errno" not in done.stderr, shown
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: "), shown


def client_commands() -> list[str]:
    """Every ``client`` of the tree (the grammar: ``HOST -p PORT``), new chapters included."""
    found = []
    for name in verb_commands("client"):
        required = [p.name for p in COMMANDS[name].params if p.required]
        if not required:
            found.append(f"{name} 127.0.0.1 -p {{port}}")
    return found


#: Commands that connect but are not named ``client``, and their way to name the peer.
OTHER_CLIENTS = [
    "tcp deadlock 127.0.0.1 1000 -p {port}",
    "tls connect 127.0.0.1 -p {port}",
    "tls inspect 127.0.0.1 -p {port}",
    "cache ping -s 127.0.0.1:{port}",
]

#: Clients over UDP: a closed port is an ICMP refusal; there is no connection to reset.
UDP_CLIENTS = {"udp client 127.0.0.1 -p {port}"}

CLIENTS = client_commands() + OTHER_CLIENTS
TCP_CLIENTS = [c for c in CLIENTS if c not in UDP_CLIENTS]


@pytest.mark.parametrize("command", CLIENTS)
def test_a_closed_port(command: str, closed_port: int, env: dict[str, str]) -> None:
    check_one_line(command.format(port=closed_port).split(), env)


@pytest.mark.parametrize("command", TCP_CLIENTS)
def test_a_reset_connection(command: str, resetting_port: int, env: dict[str, str]) -> None:
    check_one_line(command.format(port=resetting_port).split(), env)


@pytest.mark.parametrize(
    "command", [f"{name} 127.0.0.1 -p {{port}}" for name in verb_commands("serve")]
)
def test_a_bind_conflict(command: str, taken_port: int, env: dict[str, str]) -> None:
    check_one_line(command.format(port=taken_port).split(), env)


@pytest.mark.parametrize(
    "command",
    [
        f"tls connect 127.0.0.1 -p {{port}} --cafile {MISSING}",
        f"tls connect 127.0.0.1 -p {{port}} --cert {MISSING} --key {MISSING}",
        f"tls inspect 127.0.0.1 -p {{port}} --cafile {MISSING}",
        f"tls serve 127.0.0.1 -p 0 --cert {MISSING} --key {MISSING}",
        f"tls serve 127.0.0.1 -p 0 --client-ca {MISSING}",
        "lab up --ephemeral --service udp --state-dir /proc/no-such-dir/lab",
    ],
)
def test_a_missing_file(command: str, closed_port: int, env: dict[str, str]) -> None:
    check_one_line(command.format(port=closed_port).split(), env)
