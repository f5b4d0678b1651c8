"""The book's chapter 16 scripts (as test-only peers with their behaviour) against the lab's
Telnet and SSH servers: only the host, port, credentials and the lab's known_hosts change."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.ssh.conftest import home, running_ssh
from wirelab.lab.service import LabContext
from wirelab.ssh.keys import client_key_file, known_hosts_file
from wirelab.telnet.server import open_telnet_server
from wirelab.telnet.service import lab_telnet_settings

HERE = Path(__file__).resolve().parent


@pytest.fixture
def lab(tmp_path: Path) -> LabContext:
    return LabContext(state_dir=tmp_path / "lab", ephemeral=True)


async def _peer(script: str, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / script), *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _ssh_book(lab: LabContext, program: str, *rest: str, cwd: Path | None = None) -> str:
    async with running_ssh(lab) as server:
        status, out, err = await _peer(
            "book_ssh.py", program, "127.0.0.1", str(server.port), "brandon",
            str(client_key_file(lab.state_dir, "brandon")), str(known_hosts_file(lab.state_dir)),
            *rest, cwd=cwd,
        )  # fmt: skip
    assert status == 0, err
    return out


def test_book_ssh_simple_sees_prompts_and_echoes(lab: LabContext) -> None:
    out = asyncio.run(_ssh_book(lab, "ssh_simple"))
    assert out.startswith("b'") and "Hello, world\\r\\n" in out and "$ " in out


def test_book_ssh_commands_prints_each_stdout(lab: LabContext) -> None:
    lines = asyncio.run(_ssh_book(lab, "ssh_commands")).splitlines()
    assert lines[0] == "b'\"Hello, world!\"\\n'"  # no shell: the quotes are kept
    assert lines[1] == "b'Linux\\n'" and "load average" in lines[2]


def test_book_ssh_threads_interleaves_two_channels(lab: LabContext) -> None:
    lines = asyncio.run(_ssh_book(lab, "ssh_threads")).split()
    assert sorted(lines) == sorted(["One", "Two", "Three", "A", "B", "C"])
    assert lines != ["One", "Two", "Three", "A", "B", "C"]


def test_book_sftp_get_fetches_with_progress(lab: LabContext, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    out = asyncio.run(_ssh_book(lab, "sftp_get", "etc/lsb-release", cwd=tmp_path))
    assert "Transfer of 'etc/lsb-release' is at" in out and "(100.0%)" in out
    copy = tmp_path / "etc" / "lsb-release.copy"
    assert copy.read_bytes() == (home(lab) / "etc" / "lsb-release").read_bytes()


def test_book_ssh_refuses_a_lab_whose_key_changed(lab: LabContext) -> None:
    import asyncssh

    async def go() -> tuple[int, str, str]:
        async with running_ssh(lab) as server:
            other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            known_hosts_file(lab.state_dir).write_text(f"[127.0.0.1]:{server.port} {other}")
            key, pins = client_key_file(lab.state_dir, "brandon"), known_hosts_file(lab.state_dir)
            return await _peer(
                "book_ssh.py", "ssh_commands", "127.0.0.1", str(server.port), "brandon",
                str(key), str(pins),
            )  # fmt: skip

    status, _, err = asyncio.run(go())
    assert status != 0 and "BadHostKeyException" in err


async def _telnet_book(lab: LabContext, program: str, password: str) -> str:
    listener = await open_telnet_server("127.0.0.1", 0, lab_telnet_settings(lab))
    try:
        status, out, err = await _peer(
            "book_telnet.py", program, "127.0.0.1", str(listener.port), "brandon", password
        )
    finally:
        await listener.aclose()
    assert status == 0, err
    return out


def test_book_telnet_login_runs_uptime(lab: LabContext) -> None:
    out = asyncio.run(_telnet_book(lab, "telnet_login", "abc123"))
    assert "load average" in out


def test_book_telnet_login_sees_login_incorrect(lab: LabContext) -> None:
    out = asyncio.run(_telnet_book(lab, "telnet_login", "wrong"))
    assert "Username and password failed - giving up" in out


def test_book_telnet_codes_negotiates_and_meets_a_shell_without_dollar(lab: LabContext) -> None:
    out = asyncio.run(_telnet_book(lab, "telnet_codes", "abc123"))
    assert 'Sending terminal type "mypython"' in out
    assert "Will not 31" in out or "Do not 1" in out  # it refused what the server offered
    assert "special character '$' refused" in out  # no $TERM expansion in the lab shell
