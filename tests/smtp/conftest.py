"""Fixtures of the SMTP tests: our server on port 0 over a fresh store, in a thread."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.seed import seed_store
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context, server_context
from wirelab.smtp.server import SMTPSettings, close_connections, open_smtp_server
from wirelab.smtp.service import MAIL_HOSTNAMES


@dataclasses.dataclass
class MailHost:
    """A running SMTP server of ours, its store and the CA its certificate comes from."""

    port: int
    store: MailStore
    ca: LabCA
    settings: SMTPSettings

    def client_context(self) -> ssl.SSLContext:
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture(scope="session")
def mail_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabCA, Path, Path]:
    base = tmp_path_factory.mktemp("mailca")
    ca = LabCA.load_or_create(base)
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base)
    return ca, cert, key


@pytest.fixture
def make_mail_host(
    tmp_path: Path, mail_ca: tuple[LabCA, Path, Path]
) -> Iterator[Callable[..., MailHost]]:
    """Start our SMTP server on a fresh seeded store; keyword arguments override settings."""
    ca, cert, key = mail_ca
    store = MailStore(tmp_path / "mail")
    seed_store(store, LAB_ACCOUNTS)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-smtp", daemon=True)
    thread.start()
    servers: list[tuple[asyncio.Server, SMTPSettings]] = []

    def make(**overrides: Any) -> MailHost:
        settings = SMTPSettings(store, tls_context=server_context(cert, key), **overrides)
        future = asyncio.run_coroutine_threadsafe(open_smtp_server("127.0.0.1", 0, settings), loop)
        server = future.result(10)
        servers.append((server, settings))
        return MailHost(server.sockets[0].getsockname()[1], store, ca, settings)

    yield make

    async def close() -> None:
        for server, settings in servers:
            server.close()
            close_connections(settings)
            await server.wait_closed()
        await asyncio.sleep(0.05)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def mail_host(make_mail_host: Callable[..., MailHost]) -> MailHost:
    return make_mail_host()
