"""The lab server's ciphers: AES-GCM and AES-CTR, never chacha20-poly1305 (decision 0161)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import asyncssh
import pytest

from tests.ssh.conftest import running_ssh
from wirelab.lab.service import LabContext
from wirelab.ssh.keys import client_key_file, known_hosts_file


def test_a_client_that_only_speaks_chacha20_is_refused(lab: LabContext) -> None:
    async def go() -> None:
        async with running_ssh(lab) as server:
            with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.DisconnectError)):
                await asyncssh.connect(
                    "127.0.0.1",
                    server.port,
                    username="brandon",
                    client_keys=[str(client_key_file(lab.state_dir, "brandon"))],
                    known_hosts=str(known_hosts_file(lab.state_dir)),
                    encryption_algs=["chacha20-poly1305@openssh.com"],
                    agent_path=None,
                    config=None,
                )

    asyncio.run(go())


def test_asyncssh_gets_aes_gcm(lab: LabContext) -> None:
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
            return str(conn.get_extra_info("send_cipher"))

    assert asyncio.run(go()).endswith("-gcm@openssh.com")


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH's client is not installed")
def test_openssh_default_choice_is_aes_not_chacha20(lab: LabContext) -> None:
    async def go() -> subprocess.CompletedProcess[str]:
        async with running_ssh(lab) as server:
            argv = [
                "ssh", "-v", "-F", "/dev/null", "-p", str(server.port),
                "-i", str(client_key_file(lab.state_dir, "brandon")),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={known_hosts_file(lab.state_dir)}",
                "brandon@127.0.0.1", "show", "hi",
            ]  # fmt: skip
            return await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
            )

    done = asyncio.run(go())
    assert done.returncode == 0, done.stderr
    chosen = [line for line in done.stderr.splitlines() if "kex: server->client cipher:" in line]
    assert chosen and "aes" in chosen[0] and "chacha20" not in chosen[0]
