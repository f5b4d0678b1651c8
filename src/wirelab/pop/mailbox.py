"""A lab mailbox for tests of mail code: deliver, list, clear (the ``lab_mailbox`` fixture).

Other projects test their POP3 and IMAP code against the lab's real servers; this helper
sets up what those servers serve, straight in the store (no SMTP round trip), and says where
the servers are::

    def test_my_fetcher(lab_mailbox):
        lab_mailbox.clear()
        lab_mailbox.deliver(b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
        host, port = lab_mailbox.pop3s           # POP3 over TLS; .imaps for IMAP
        context = lab_mailbox.ssl_context()      # trusts the lab CA
        ...                                      # log in as lab_mailbox.user / .password
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from pathlib import Path

from wirelab.errors import ConfigError
from wirelab.lab.state import LabState
from wirelab.mail.store import MAX_MESSAGE_BYTES, MailStore

__all__ = ["LabMailbox"]


class LabMailbox:
    """One account's mailbox in a running lab (by default the lab's first account).

    Raises:
        ConfigError: the lab has no such account.
    """

    def __init__(self, state: LabState, user: str | None = None) -> None:
        from wirelab.smtp.service import mail_root

        self.state = state
        account = state.account
        self.user = user or account.user
        self.store = MailStore(mail_root(Path(state.directory)))
        if not self.store.has_user(self.user):
            raise ConfigError(f"the lab has no mail account {self.user!r}")
        #: The account's password (the lab's, for the lab's own servers only).
        self.password = account.password if self.user == account.user else ""

    def deliver(self, message: bytes | EmailMessage) -> str:
        """Put ``message`` in the mailbox (CR LF line ends for an EmailMessage); its key.

        Raises:
            ConfigError: a message over the store's size limit.
        """
        if isinstance(message, bytes):
            data = message
        else:
            import email.policy

            data = message.as_bytes(policy=email.policy.SMTP)
        if len(data) > MAX_MESSAGE_BYTES:
            raise ConfigError(f"a {len(data)}-byte message is over {MAX_MESSAGE_BYTES}")
        return self.store.deliver(self.user, data).key

    def messages(self) -> list[bytes]:
        """Every message, oldest first, as stored (what RETR and FETCH BODY[] return)."""
        return [m.read_bytes() for m in self.store.messages(self.user)]

    def clear(self) -> None:
        """Empty the mailbox."""
        self.store.clear(self.user)

    def _endpoint(self, service: str, endpoint: str) -> tuple[str, int]:
        return self.state.endpoint(service, endpoint).sockaddr

    @property
    def pop3(self) -> tuple[str, int]:
        """(host, port) of POP3 with STLS."""
        return self._endpoint("pop3", "pop3")

    @property
    def pop3s(self) -> tuple[str, int]:
        """(host, port) of POP3 over TLS."""
        return self._endpoint("pop3", "pop3s")

    @property
    def imap(self) -> tuple[str, int]:
        """(host, port) of IMAP with STARTTLS."""
        return self._endpoint("imap", "imap")

    @property
    def imaps(self) -> tuple[str, int]:
        """(host, port) of IMAP over TLS."""
        return self._endpoint("imap", "imaps")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab CA (and verifies host names)."""
        return self.state.ssl_context()
