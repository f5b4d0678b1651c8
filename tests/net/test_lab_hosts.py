"""While a lab runs, the book's playground names are the lab: every client reaches it by them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "command",
    [
        "tcp client example.com",
        "tcp deadlock www.example.com 1000",
        "udp client www.example.com",
        "stream client ftp.example.com",
        "blocks client mail.example.com",
        "zen client www.example.com",
        "tls connect www.example.com",
    ],
)
def test_every_client_command_reaches_the_lab_by_name(
    command: str, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab(*command.split(), env=wirelab_env, timeout=60)
    assert done.returncode == 0, f"wirelab {command}: {done.stderr}"
    assert "Traceback" not in done.stderr
