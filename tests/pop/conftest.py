"""Fixtures of the POP3 tests: our server on port 0 over a fresh seeded store, in a thread."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from tests.mailfixtures import MailCA, ServerThreads, mail_ca, mail_store, server_threads
from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context
from wirelab.pop.server import POP3Settings, open_pop3_server

__all__ = ["PopHost", "mail_ca", "mail_store", "server_threads"]  # the shared fixtures, too


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


@pytest.fixture
def make_pop_host(
    mail_ca: MailCA, mail_store: MailStore, server_threads: ServerThreads
) -> Callable[..., PopHost]:
    """Start our POP3 server (both ports) on a fresh seeded store; keywords override settings."""

    def make(**overrides: Any) -> PopHost:
        options: dict[str, Any] = {
            "tls_context": mail_ca.server_context(),
            "apop_secrets": {a.user: a.password for a in LAB_ACCOUNTS},
            "auth_failure_delay": 0.0,
        }
        options.update(overrides)
        settings = POP3Settings(mail_store, **options)
        tls_settings = dataclasses.replace(settings, implicit_tls=True)
        port = server_threads(lambda: open_pop3_server("127.0.0.1", 0, settings))
        tls_port = server_threads(lambda: open_pop3_server("127.0.0.1", 0, tls_settings))
        return PopHost(port, tls_port, mail_store, mail_ca.ca, settings)

    return make


@pytest.fixture
def pop_host(make_pop_host: Callable[..., PopHost]) -> PopHost:
    return make_pop_host()
