"""The lab's SSH host (chapter 16): asyncssh with the minimal shell, exec, SFTP and SCP.

Endpoint ``ssh`` (10022, the book's 22 shifted). Every lab account logs in with its lab
password or its lab key (``STATE/ssh/keys/USER``); its shell is the minimal shell and its
files are its lab home (``STATE/shell/home/USER``, shared with the Telnet host). The host key
is kept in ``STATE/ssh`` and pinned in ``STATE/ssh/known_hosts``, written after binding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

if TYPE_CHECKING:
    from wirelab.ssh.server import SSHSettings

__all__ = ["SERVICES", "SSHService", "lab_homes", "lab_ssh_settings"]


def lab_homes(state_dir: Path) -> Path:
    """Where the lab accounts' homes live (shared by the SSH and Telnet hosts)."""
    from wirelab.config import private_dir

    return private_dir(state_dir / "shell") / "home"


def lab_ssh_settings(lab: LabContext) -> SSHSettings:
    """The lab SSH server's settings: host key, accounts with homes and authorized keys."""
    from wirelab.shell.minimal import environment_home
    from wirelab.ssh.keys import account_keys, authorized_keys_file, host_key
    from wirelab.ssh.server import SSHAccount, SSHSettings

    key = host_key(lab.state_dir)
    account_keys(lab.state_dir, [a.user for a in lab.accounts])
    base = lab_homes(lab.state_dir)
    accounts = tuple(
        SSHAccount(
            a.user,
            a.password,
            environment_home(base, a.user),
            authorized_keys_file(lab.state_dir, a.user),
        )
        for a in lab.accounts
    )
    return SSHSettings(host_key=key, accounts=accounts)


def _opener(lab: LabContext) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        from wirelab.ssh.keys import write_known_hosts
        from wirelab.ssh.server import open_ssh_server

        settings = await asyncio.to_thread(lab_ssh_settings, lab)
        listener = await open_ssh_server(host, port, settings)
        write_known_hosts(lab.state_dir, settings.host_key, listener.port)
        return listener

    return open_endpoint


class SSHService(DeclaredService):
    """asyncssh: password and key logins, the minimal shell, exec, SFTP confined to the home."""

    name = "ssh"
    host = "www.example.com"
    chapter = 16
    description = "SSH and SFTP host: minimal shell, exec, SFTP in the lab home (ch. 16)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (Endpoint("ssh", _opener(lab)),)


SERVICES = (SSHService(),)
