"""Fixtures of the POP3 tests: our server on port 0 over a fresh seeded store, in a thread."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.seed import seed_store
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.server import ServerThread
from wirelab.net.tlsctx import client_context, server_context
from wirelab.pop.server import POP3Settings, open_pop3_server
from wirelab.smtp.service import MAIL_HOSTNAMES


@dataclasses.dataclass
class PopHost:
    """One running POP3 server of ours (plain+STLS and implicit TLS) over one store."""

    port: int
    tls_port: int
    store: MailStore
    ca: LabCA
    settings: POP3Settings

    def context(self) -> ssl.SSLContext:
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture(scope="session")
def pop_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabCA, Path, Path]:
    base = tmp_path_factory.mktemp("popca")
    ca = LabCA.load_or_create(base)
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base)
    return ca, cert, key


@pytest.fixture
def make_pop_host(
    tmp_path: Path, pop_ca: tuple[LabCA, Path, Path]
) -> Iterator[Callable[..., PopHost]]:
    """Start our POP3 server (both ports) on a fresh seeded store; keywords override settings."""
    ca, cert, key = pop_ca
    store = MailStore(tmp_path / "mail")
    seed_store(store, LAB_ACCOUNTS)
    threads: list[ServerThread] = []

    def make(**overrides: Any) -> PopHost:
        options: dict[str, Any] = {
            "tls_context": server_context(cert, key),
            "apop_secrets": {a.user: a.password for a in LAB_ACCOUNTS},
            "auth_failure_delay": 0.0,
        }
        options.update(overrides)
        settings = POP3Settings(store, **options)
        tls_settings = dataclasses.replace(settings, implicit_tls=True)
        plain = ServerThread(lambda: open_pop3_server("127.0.0.1", 0, settings))
        threads.append(plain)
        port = plain.start().address[1]
        secure = ServerThread(lambda: open_pop3_server("127.0.0.1", 0, tls_settings))
        threads.append(secure)
        tls_port = secure.start().address[1]
        return PopHost(port, tls_port, store, ca, settings)

    yield make
    for thread in threads:
        thread.stop()


@pytest.fixture
def pop_host(make_pop_host: Callable[..., PopHost]) -> PopHost:
    return make_pop_host()
