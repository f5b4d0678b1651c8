"""A lab SSH server per test, on a free loopback port, in the test's own event loop."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from wirelab.lab.service import LabContext
from wirelab.ssh.client import SSHTarget
from wirelab.ssh.keys import client_key_file, known_hosts_file, write_known_hosts
from wirelab.ssh.server import SSHListener, open_ssh_server
from wirelab.ssh.service import lab_ssh_settings


@pytest.fixture
def lab(tmp_path: Path) -> LabContext:
    """A lab context of its own (state in the test's directory)."""
    return LabContext(state_dir=tmp_path / "lab", ephemeral=True)


@asynccontextmanager
async def running_ssh(lab: LabContext, **limits: Any) -> AsyncIterator[SSHListener]:
    """The lab SSH server with ``limits`` (``failure_delay=0.2`` ...), closed on exit."""
    settings = dataclasses.replace(lab_ssh_settings(lab), **limits)
    listener = await open_ssh_server("127.0.0.1", 0, settings)
    write_known_hosts(lab.state_dir, settings.host_key, listener.port)
    try:
        yield listener
    finally:
        await listener.aclose()


def target(
    lab: LabContext,
    port: int,
    *,
    key: bool = True,
    password: str | None = None,
    user: str = "brandon",
    timeout: float = 10.0,
) -> SSHTarget:
    """How our client logs in to the lab server: the lab key and/or a password."""
    keys = (client_key_file(lab.state_dir, user),) if key else ()
    return SSHTarget(
        "127.0.0.1", port, user, password, keys, known_hosts_file(lab.state_dir), timeout
    )


def home(lab: LabContext, user: str = "brandon") -> Path:
    """The account's lab home."""
    return lab.state_dir / "shell" / "home" / user
