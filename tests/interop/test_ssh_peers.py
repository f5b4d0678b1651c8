"""Chapter 16 with independent peers: OpenSSH's ssh, sftp, scp and ssh-keyscan against the lab
SSH server (key auth, the lab's known_hosts), and our clients against OpenSSH's sshd."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.ssh_peers import need, openssh_options, sshd_server
from tests.ssh.conftest import home, running_ssh
from wirelab.lab.service import LabContext
from wirelab.ssh.client import (
    HostKeyRefused,
    SSHTarget,
    connect,
    run_commands,
    run_concurrently,
    sftp_get,
    sftp_put,
)
from wirelab.ssh.keys import client_key_file, known_hosts_file


@pytest.fixture
def lab(tmp_path: Path) -> LabContext:
    """A lab context of its own (state in the test's directory)."""
    return LabContext(state_dir=tmp_path / "lab", ephemeral=True)


async def _run(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _options(lab: LabContext) -> list[str]:
    return openssh_options(
        client_key_file(lab.state_dir, "brandon"), known_hosts_file(lab.state_dir)
    )


def test_openssh_ssh_runs_a_command_on_the_lab_with_a_key(lab: LabContext) -> None:
    ssh = need("ssh")

    async def go() -> list[tuple[int, str, str]]:
        async with running_ssh(lab) as server:
            base = [ssh, *_options(lab), "-p", str(server.port), "brandon@127.0.0.1"]
            return [
                await _run(*base, "show a b"),
                await _run(*base, "false"),
                await _run(*base, "cat", "/etc/passwd"),
            ]

    (status, out, err), (false_status, _, _), (cat_status, cat_out, cat_err) = asyncio.run(go())
    assert (status, out) == (0, "Arguments: ['a', 'b']\n"), err
    assert false_status == 1
    assert cat_status == 126 and cat_out == "" and "absolute path refused" in cat_err


def test_openssh_refuses_the_lab_when_the_pin_differs(lab: LabContext, tmp_path: Path) -> None:
    ssh = need("ssh")
    need("ssh-keygen")
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)

    async def go() -> tuple[int, str, str]:
        async with running_ssh(lab) as server:
            pub = other.with_suffix(".pub").read_text().split()
            known_hosts_file(lab.state_dir).write_text(
                f"[127.0.0.1]:{server.port} {pub[0]} {pub[1]}\n"
            )
            return await _run(
                ssh, *_options(lab), "-p", str(server.port), "brandon@127.0.0.1", "show"
            )

    status, out, err = asyncio.run(go())
    assert status == 255 and out == "" and "HOST IDENTIFICATION HAS CHANGED" in err


def test_openssh_sftp_and_scp_round_trip_byte_identically(lab: LabContext, tmp_path: Path) -> None:
    sftp, scp = need("sftp"), need("scp")
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "up.bin").write_bytes(data)
    batch = (
        f"put {tmp_path / 'up.bin'} up.bin\nget up.bin {tmp_path / 'down.bin'}\ncd ..\npwd\nls /\n"
    ).encode()

    async def go() -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        async with running_ssh(lab) as server:
            opts = _options(lab)
            listing = await _run(
                sftp, *opts, "-P", str(server.port), "-b", "-", "brandon@127.0.0.1", stdin=batch
            )
            copied = await _run(
                scp,
                *opts,
                "-P",
                str(server.port),
                "brandon@127.0.0.1:/etc/lsb-release",
                str(tmp_path / "lsb"),
            )
            return listing, copied

    (status, out, err), (scp_status, _, scp_err) = asyncio.run(go())
    assert status == 0, err
    assert (home(lab) / "up.bin").read_bytes() == data
    assert (tmp_path / "down.bin").read_bytes() == data
    assert "Remote working directory: /\n" in out  # 'cd ..' from / stays at the home's /
    assert scp_status == 0, scp_err
    assert (tmp_path / "lsb").read_text() == (home(lab) / "etc" / "lsb-release").read_text()


def test_ssh_keyscan_shows_the_pinned_key(lab: LabContext) -> None:
    keyscan = need("ssh-keyscan")

    async def go() -> str:
        async with running_ssh(lab) as server:
            return (await _run(keyscan, "-t", "ed25519", "-p", str(server.port), "127.0.0.1"))[1]

    scanned = asyncio.run(go()).split()
    pinned = known_hosts_file(lab.state_dir).read_text().split()
    assert scanned[1:3] == pinned[1:3]


@pytest.fixture
def sshd(tmp_path: Path):  # type: ignore[no-untyped-def]
    with sshd_server(tmp_path / "sshd") as server:
        yield server


def test_our_clients_work_against_openssh_sshd(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = SSHTarget(
        sshd.host, sshd.port, sshd.user, None, (sshd.client_key,), sshd.known_hosts, 10
    )
    data = os.urandom(1024 * 1024 + 3)
    (tmp_path / "payload").write_bytes(data)
    remote = str(tmp_path / "remote.bin")

    async def go() -> tuple[list[object], list[tuple[int, str, float]]]:
        async with connect(target) as conn:
            results = await run_commands(conn, ["echo hello", "echo oops >&2; exit 3"])
            arrived = await run_concurrently(
                conn, ["echo One; sleep 0.6; echo Two", "sleep 0.3; echo A; sleep 0.6; echo B"]
            )
            await sftp_put(conn, tmp_path / "payload", remote)
            await sftp_get(conn, remote, tmp_path / "back")
            return [(r.stdout, r.stderr, r.exit_status) for r in results], arrived

    results, arrived = asyncio.run(go())
    assert results == [("hello\n", "", 0), ("", "oops\n", 3)]
    assert [line for _, line, _ in arrived] == ["One", "A", "Two", "B"]
    assert (tmp_path / "back").read_bytes() == data


def test_our_client_refuses_sshd_with_an_unpinned_key(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    target = SSHTarget(sshd.host, sshd.port, sshd.user, None, (sshd.client_key,), empty, 10)

    async def go() -> None:
        async with connect(target):
            pass

    with pytest.raises(HostKeyRefused, match="SHA256:"):
        asyncio.run(go())
