"""Fixtures of the IMAP tests: our server (pymap over the store) on port 0, in a thread."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirelab.config import LAB_ACCOUNTS
from wirelab.imap.server import IMAPSettings, open_imap_server
from wirelab.mail.seed import seed_store
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.server import ServerThread
from wirelab.net.tlsctx import client_context, server_context
from wirelab.smtp.service import MAIL_HOSTNAMES


@dataclasses.dataclass
class ImapHost:
    port: int
    tls_port: int
    store: MailStore
    ca: LabCA

    def context(self) -> ssl.SSLContext:
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture(scope="session")
def imap_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabCA, Path, Path]:
    base = tmp_path_factory.mktemp("imapca")
    ca = LabCA.load_or_create(base)
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base)
    return ca, cert, key


@pytest.fixture
def make_imap_host(
    tmp_path: Path, imap_ca: tuple[LabCA, Path, Path]
) -> Iterator[Callable[..., ImapHost]]:
    ca, cert, key = imap_ca
    store = MailStore(tmp_path / "mail")
    seed_store(store, LAB_ACCOUNTS)
    threads: list[ServerThread] = []

    def make(**overrides: Any) -> ImapHost:
        settings = IMAPSettings(store, tls_context=server_context(cert, key), **overrides)
        secure = dataclasses.replace(settings, implicit_tls=True)
        plain = ServerThread(lambda: open_imap_server("127.0.0.1", 0, settings))
        threads.append(plain)
        port = plain.start().address[1]
        tls = ServerThread(lambda: open_imap_server("127.0.0.1", 0, secure))
        threads.append(tls)
        return ImapHost(port, tls.start().address[1], store, ca)

    yield make
    for thread in threads:
        thread.stop()


@pytest.fixture
def imap_host(make_imap_host: Callable[..., ImapHost]) -> ImapHost:
    return make_imap_host()
