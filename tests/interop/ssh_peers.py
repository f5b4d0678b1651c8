"""Independent SSH peers for the chapter 16 interop tests: OpenSSH's client tools and sshd.

:func:`need` (from :mod:`tests.interop.ftp_peers`) finds a tool or skips, and fails under
``WIRELAB_REQUIRE_SERVICES=1``. :func:`sshd_server` runs OpenSSH's sshd from a configuration
the test writes (its own host key, one authorized key for the current user, no PAM), on a
free loopback port, in the foreground, and stops it by PID (never the system's sshd).
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.ftp_peers import free_port, need

__all__ = ["SSHD", "need", "openssh_options", "sshd_server"]


def openssh_options(key: Path, known_hosts: Path) -> list[str]:
    """Options that make OpenSSH's client use only this key and this pin (no user config)."""
    return [
        "-F", "/dev/null",
        "-i", str(key),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10",
    ]  # fmt: skip


@dataclass(frozen=True)
class SSHD:
    """A running sshd: where it listens, who may log in with which key, and its host key pin."""

    host: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path


@contextmanager
def sshd_server(workdir: Path) -> Iterator[SSHD]:
    """OpenSSH's sshd on a free loopback port, accepting a fresh key for the current user."""
    sshd = need("sshd")
    keygen = need("ssh-keygen")
    if os.geteuid() != 0:
        pytest.skip("sshd must run as root to log a user in")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege-separation directory
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    for key in (host_key, client_key):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    pub = host_key.with_suffix(".pub").read_text().split()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    log = (workdir / "sshd.log").open("wb")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while "Server listening" not in (workdir / "sshd.log").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(workdir / 'sshd.log').read_text()[-800:]}")
            time.sleep(0.05)
        yield SSHD("127.0.0.1", port, getpass.getuser(), client_key, known_hosts)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
