"""The lab's SSH key material, kept in the lab state directory (``STATE/ssh``).

* ``ssh_host_ed25519_key`` (0600): the lab server's host key, made once and kept, so a client
  that pinned it sees the same key on every run;
* ``known_hosts``: the pin, written by the lab after it binds (``[127.0.0.1]:PORT``,
  ``[localhost]:PORT`` and ``[*.example.com]:PORT``), for our client and for OpenSSH's
  (``ssh -o UserKnownHostsFile=...``);
* ``keys/USER`` (0600) and ``keys/USER.pub``: a client key per lab account, authorized by
  ``authorized_keys/USER`` (append your own public keys there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from wirelab.config import private_dir

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "authorized_keys_file",
    "client_key_file",
    "host_key",
    "known_hosts_file",
    "ssh_dir",
    "write_known_hosts",
]


def ssh_dir(state_dir: Path) -> Path:
    """The lab's SSH directory (created 0700)."""
    return private_dir(state_dir / "ssh")


def known_hosts_file(state_dir: Path) -> Path:
    """Where the lab pins its host key."""
    return state_dir / "ssh" / "known_hosts"


def client_key_file(state_dir: Path, user: str) -> Path:
    """The private key of lab account ``user``."""
    return state_dir / "ssh" / "keys" / user


def authorized_keys_file(state_dir: Path, user: str) -> Path:
    """The public keys that may log in as lab account ``user``."""
    return state_dir / "ssh" / "authorized_keys" / user


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def _load_or_make(path: Path) -> asyncssh.SSHKey:
    import asyncssh

    if path.exists():
        path.chmod(0o600)
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    _write_private(path, key.export_private_key())
    return key


def host_key(state_dir: Path) -> asyncssh.SSHKey:
    """The lab's host key, made on first use and kept (0600)."""
    return _load_or_make(ssh_dir(state_dir) / "ssh_host_ed25519_key")


def account_keys(state_dir: Path, users: list[str]) -> None:
    """Make each account's client key (once) and authorize it (once)."""
    base = ssh_dir(state_dir)
    private_dir(base / "keys")
    private_dir(base / "authorized_keys")
    for user in users:
        key = _load_or_make(client_key_file(state_dir, user))
        public = key.export_public_key().decode().strip()
        client_key_file(state_dir, user).with_suffix(".pub").write_text(public + "\n")
        authorized = authorized_keys_file(state_dir, user)
        lines = authorized.read_text().splitlines() if authorized.exists() else []
        if public not in lines:
            authorized.write_text("\n".join([*lines, public]) + "\n")


def write_known_hosts(state_dir: Path, key: asyncssh.SSHKey, port: int) -> Path:
    """Pin ``key`` for the lab's SSH port in ``known_hosts`` (replacing an older pin)."""
    public = key.export_public_key().decode().strip()
    hosts = ("127.0.0.1", "localhost", "*.example.com", "example.com")
    # OpenSSH's known_hosts names port 22 bare and any other port as [host]:port; a [host]:22
    # entry is looked up by neither OpenSSH nor asyncssh
    names = ",".join(host if port == 22 else f"[{host}]:{port}" for host in hosts)
    path = known_hosts_file(state_dir)
    ssh_dir(state_dir)
    path.write_text(f"{names} {public}\n")
    return path
