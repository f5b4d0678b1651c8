"""What the mail tests (SMTP, POP3, IMAP) share: the lab CA with the mail host's certificate, a
freshly seeded mail store, and our servers started on port 0 in threads.

The conftests of ``tests/smtp``, ``tests/pop`` and ``tests/imap`` import the fixtures
(``mail_ca``, ``mail_store``, ``server_threads``) and build their ``*_host`` fixtures on them.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.seed import seed_store
from wirelab.mail.store import MailStore
from wirelab.net.ca import LabCA
from wirelab.net.server import ConnectionServer, ServerThread
from wirelab.net.tlsctx import client_context, server_context
from wirelab.smtp.service import MAIL_HOSTNAMES

__all__ = ["MailCA", "ServerThreads", "mail_ca", "mail_store", "server_threads"]


@dataclasses.dataclass(frozen=True)
class MailCA:
    """A lab CA and the certificate it issued for every name of the lab mail host."""

    ca: LabCA
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the mail host's certificate."""
        return server_context(self.cert, self.key)

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA only."""
        return client_context(cafile=self.ca.cert_path)


@pytest.fixture(scope="session")
def mail_ca(tmp_path_factory: pytest.TempPathFactory) -> MailCA:
    """One lab CA for the session, with the mail host's certificate (as ``lab up`` makes)."""
    base = tmp_path_factory.mktemp("mailca")
    ca = LabCA.load_or_create(base)
    cert, key = ca.server_cert_for(list(MAIL_HOSTNAMES), base)
    return MailCA(ca, cert, key)


@pytest.fixture
def mail_store(tmp_path: Path) -> MailStore:
    """A fresh mail store seeded with the lab accounts and their messages."""
    store = MailStore(tmp_path / "mail")
    seed_store(store, LAB_ACCOUNTS)
    return store


#: Starts one server in a thread (``start(lambda: open_pop3_server("127.0.0.1", 0, s))``) and
#: returns its port.
ServerThreads = Callable[[Callable[[], Awaitable[ConnectionServer]]], int]


@pytest.fixture
def server_threads() -> Iterator[ServerThreads]:
    """Start servers of ours on loopback, each in a :class:`ServerThread`; all stop at the end."""
    threads: list[ServerThread] = []

    def start(opener: Callable[[], Awaitable[ConnectionServer]]) -> int:
        thread = ServerThread(opener)
        threads.append(thread)
        return int(thread.start().address[1])

    yield start
    for thread in threads:
        thread.stop()
