"""While a lab runs, the book's playground names are the lab: every client reaches it by them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.tree import COMMANDS, verb_commands
from tests.conftest import run_wirelab
from wirelab.errors import NameResolutionError
from wirelab.lab.state import LabState
from wirelab.net.addresses import connect_tcp, lab_address, resolve

NAMES = ["example.com", "www.example.com", "mail.example.com", "ftp.example.com"]


@pytest.fixture
def in_lab(wirelab_lab: LabState, monkeypatch: pytest.MonkeyPatch) -> LabState:
    """This process sees the session lab as the running lab (as a command in it would)."""
    monkeypatch.setenv("WIRELAB_HOME", wirelab_lab.directory)
    return wirelab_lab


@pytest.mark.parametrize("name", [*NAMES, "WWW.Example.COM.", "backbone.example.com"])
def test_playground_names_resolve_to_the_lab(in_lab: LabState, name: str) -> None:
    address = in_lab.endpoint("tcp", "sixteen").address
    assert lab_address(name) == address
    infos = resolve(name, 1060)
    assert {info.host for info in infos} == {address}


def test_a_service_host_gets_its_own_service(in_lab: LabState) -> None:
    queue = in_lab.service("queue")
    assert lab_address(queue.host) == queue.endpoint().address


def test_a_name_outside_the_playground_is_left_to_the_name_service(in_lab: LabState) -> None:
    assert lab_address("example.org") is None
    assert lab_address("notexample.com") is None
    with pytest.raises(NameResolutionError):
        resolve("no-such-host.invalid", 1060)


def test_without_a_lab_the_names_are_not_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRELAB_HOME", str(tmp_path))
    assert lab_address("www.example.com") is None


def test_a_library_client_connects_by_name(in_lab: LabState) -> None:
    port = in_lab.endpoint("tcp", "sixteen").port
    with connect_tcp("mail.example.com", port, timeout=5) as sock:
        sock.sendall(b"Hi there, server")
        assert sock.recv(16) == b"Farewell, client"
        assert sock.getpeername()[0] == in_lab.endpoint("tcp", "sixteen").address
        assert sock.family in (socket.AF_INET, socket.AF_INET6)


def playground_host(state: LabState, topic: str) -> str:
    """The book's name for the lab service a topic's client talks to (else example.com)."""
    for ep in state.endpoints:
        if topic in (ep.service, ep.endpoint) and ep.host.endswith("example.com"):
            return ep.host
    return "www.example.com"


#: Every ``client`` of the tree that runs with a host alone (the grammar's default form).
CLIENTS = [
    name for name in verb_commands("client") if not any(p.required for p in COMMANDS[name].params)
]


@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_reaches_the_lab_by_its_name(
    client: str, wirelab_lab: LabState, wirelab_env: dict[str, str]
) -> None:
    host = playground_host(wirelab_lab, client.split()[0])
    done = run_wirelab(*client.split(), host, env=wirelab_env, timeout=60)
    assert done.returncode == 0, f"wirelab {client} {host}: {done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        "tcp deadlock www.example.com 1000",
        "tls connect www.example.com",
        "tls inspect www.example.com",
    ],
)
def test_other_commands_reach_the_lab_by_name(command: str, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab(*command.split(), env=wirelab_env, timeout=60)
    assert done.returncode == 0, f"wirelab {command}: {done.stderr}"
    assert "Traceback" not in done.stderr


def test_a_stdlib_client_in_the_cli_process_resolves_the_names_too(in_lab: LabState) -> None:
    """``lab_names_everywhere`` (the CLI calls it): ``socket.getaddrinfo`` itself maps them."""
    code = (
        "import socket; from wirelab.net.addresses import lab_names_everywhere; "
        "lab_names_everywhere(); lab_names_everywhere(); "
        "print(socket.getaddrinfo('ftp.example.com', 21, type=socket.SOCK_STREAM)[0][4][0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == in_lab.endpoint("tcp", "sixteen").address


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_another_network_namespace_keeps_its_own_names(wirelab_lab: LabState) -> None:
    """In a playground host (its own network namespace) the lab's loopback is not reachable."""
    code = "from wirelab.net.addresses import lab_address; print(lab_address('www.example.com'))"
    env = dict(os.environ, WIRELAB_HOME=wirelab_lab.directory)
    here = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert here.stdout.strip() == wirelab_lab.endpoint("tcp", "sixteen").address, here.stderr
    there = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if there.returncode != 0 and "unshare" in there.stderr:
        pytest.skip(f"cannot make a network namespace here: {there.stderr.strip()}")
    assert there.stdout.strip() == "None", there.stderr
