"""Fixtures of the SMTP tests: our server on port 0 over a fresh store, in a thread."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.mailfixtures import MailCA, mail_ca, mail_store
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context
from wirelab.smtp.server import SMTPSettings, close_connections, open_smtp_server

__all__ = ["MailHost", "mail_ca", "mail_store"]  # the shared fixtures, too


@dataclasses.dataclass
class MailHost:
    """A running SMTP server of ours, its store and the CA its certificate comes from."""

    port: int
    store: MailStore
    ca: LabCA
    settings: SMTPSettings

    def client_context(self) -> ssl.SSLContext:
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture
def make_mail_host(mail_ca: MailCA, mail_store: MailStore) -> Iterator[Callable[..., MailHost]]:
    """Start our SMTP server on a fresh seeded store; keyword arguments override settings.

    It runs on one event loop of its own (not a ``ServerThread``: an asyncio server, whose
    sessions ``close_connections`` ends before the loop stops).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-smtp", daemon=True)
    thread.start()
    servers: list[tuple[asyncio.Server, SMTPSettings]] = []

    def make(**overrides: Any) -> MailHost:
        settings = SMTPSettings(mail_store, tls_context=mail_ca.server_context(), **overrides)
        future = asyncio.run_coroutine_threadsafe(open_smtp_server("127.0.0.1", 0, settings), loop)
        server = future.result(10)
        servers.append((server, settings))
        return MailHost(server.sockets[0].getsockname()[1], mail_store, mail_ca.ca, settings)

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
