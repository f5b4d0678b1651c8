"""Fixtures for the TLS tests: a private CA, our greeting server on a loop thread, peers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import server_context
from wirelab.tls.server import GreetingServer


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    """A CA of our own (not the session lab's)."""
    return LabCA.load_or_create(tmp_path_factory.mktemp("tls-ca"))


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls-certs")


@pytest.fixture(scope="session")
def server_pem(ca: LabCA, cert_dir: Path) -> tuple[Path, Path]:
    """A server certificate for localhost and the loopback addresses."""
    return ca.server_cert_for(["localhost"], cert_dir)


@pytest.fixture(scope="session")
def client_pem(ca: LabCA, cert_dir: Path) -> tuple[Path, Path]:
    """A client certificate (CN brandon) from the CA."""
    issued = ca.issue(["brandon.example.com"], ip_addresses=(), client=True, common_name="brandon")
    return issued.write(cert_dir, "client")


@pytest.fixture
def greeting_server(
    server_pem: tuple[Path, Path],
) -> Callable[..., GreetingServer]:
    """Make a GreetingServer presenting the test server certificate."""

    def make(**kwargs: object) -> GreetingServer:
        client_ca = kwargs.pop("client_ca", None)
        ctx = server_context(
            *server_pem,
            client_cafile=client_ca,  # type: ignore[arg-type]
            require_client_cert=client_ca is not None,
        )
        return GreetingServer(ctx, **kwargs)  # type: ignore[arg-type]

    return make
