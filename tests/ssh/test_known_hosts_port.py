"""The lab's host-key pin is found by OpenSSH and asyncssh on port 22 as on any other port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import asyncssh
import pytest

from wirelab.ssh.keys import write_known_hosts


@pytest.mark.parametrize("port", [22, 10022])
def test_pin_is_found_by_asyncssh(tmp_path: Path, port: int) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = write_known_hosts(tmp_path, key, port)
    trusted, *_ = asyncssh.read_known_hosts(str(path)).match("127.0.0.1", "127.0.0.1", port)
    assert [k.export_public_key() for k in trusted] == [key.export_public_key()]
    if port != 22:  # a [host]:port pin is for that port only (asyncssh takes a bare name anywhere)
        assert asyncssh.read_known_hosts(str(path)).match("127.0.0.1", "127.0.0.1", 22)[0] == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
@pytest.mark.parametrize(("port", "lookup"), [(22, "127.0.0.1"), (10022, "[127.0.0.1]:10022")])
def test_pin_is_found_by_openssh(tmp_path: Path, port: int, lookup: str) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = write_known_hosts(tmp_path, key, port)
    found = subprocess.run(
        ["ssh-keygen", "-F", lookup, "-f", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert found.returncode == 0, found.stdout + found.stderr
    assert key.export_public_key().decode().split()[1] in found.stdout
