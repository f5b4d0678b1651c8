"""Fixtures of the FTP tests: a seeded tree (small tarball) and servers of our own on port 0."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirelab.ftp.seed import build_public_tree
from wirelab.ftp.server import FTPAccount, FTPLabServer, FTPSettings, start_ftp_server
from wirelab.net.ca import LabCA

#: A small tarball keeps the suite fast; the lab's is 4 MiB.
TEST_TARBALL = 256 * 1024


@dataclasses.dataclass(frozen=True)
class FTPFiles:
    public: Path
    home: Path
    ca: LabCA
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def ftp_files(tmp_path_factory: pytest.TempPathFactory) -> FTPFiles:
    base = tmp_path_factory.mktemp("ftp")
    public = build_public_tree(base / "anonymous", tarball_bytes=TEST_TARBALL)
    home = base / "home" / "brandon"
    home.mkdir(parents=True)
    ca = LabCA.load_or_create(base / "ca")
    cert, key = ca.server_cert_for(["ftp.example.com", "localhost"], base / "ca")
    return FTPFiles(public, home, ca, cert, key)


@pytest.fixture
def make_server(ftp_files: FTPFiles) -> Iterator[Callable[..., FTPLabServer]]:
    """Start our FTP server with the test tree; keyword arguments override settings."""
    started: list[FTPLabServer] = []

    def make(**overrides: Any) -> FTPLabServer:
        settings = FTPSettings(
            anonymous_root=ftp_files.public,
            accounts=(FTPAccount("brandon", "abc123", ftp_files.home),),
            cert_file=ftp_files.cert,
            key_file=ftp_files.key,
            login_failure_delay=0.3,
        )
        server = start_ftp_server("127.0.0.1", 0, dataclasses.replace(settings, **overrides))
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def ftp_server(make_server: Callable[..., FTPLabServer]) -> FTPLabServer:
    return make_server()
