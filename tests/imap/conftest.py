"""Fixtures of the IMAP tests: our server (pymap over the store) on port 0, in a thread."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from tests.mailfixtures import MailCA, ServerThreads, mail_ca, mail_store, server_threads
from wirelab.imap.server import IMAPSettings, open_imap_server
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context

__all__ = ["ImapHost", "mail_ca", "mail_store", "server_threads"]  # the shared fixtures, too


@dataclasses.dataclass
class ImapHost:
    port: int
    tls_port: int
    store: MailStore
    ca: LabCA

    def context(self) -> ssl.SSLContext:
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture
def make_imap_host(
    mail_ca: MailCA, mail_store: MailStore, server_threads: ServerThreads
) -> Callable[..., ImapHost]:
    """Start our IMAP server (both ports) on a fresh seeded store; keywords override settings."""

    def make(**overrides: Any) -> ImapHost:
        settings = IMAPSettings(mail_store, tls_context=mail_ca.server_context(), **overrides)
        secure = dataclasses.replace(settings, implicit_tls=True)
        port = server_threads(lambda: open_imap_server("127.0.0.1", 0, settings))
        tls_port = server_threads(lambda: open_imap_server("127.0.0.1", 0, secure))
        return ImapHost(port, tls_port, mail_store, mail_ca.ca)

    return make


@pytest.fixture
def imap_host(make_imap_host: Callable[..., ImapHost]) -> ImapHost:
    return make_imap_host()
