"""The lab mail host's SMTP service (chapter 13): ``mail.example.com``.

Endpoint ``smtp`` (10025, the book's 25 shifted) takes mail for the lab's domains as an MX
does, offers STARTTLS, and AUTH PLAIN/LOGIN after it (submission); endpoint ``smtps``
(10465) is implicit TLS. Both deliver into the store :func:`lab_mail_store` opens under the
lab directory (``mail/``), seeded on first use with ``brandon``'s mailbox; POP3 and IMAP
(chapters 14-15) read the same store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

if TYPE_CHECKING:
    from wirelab.mail.store import MailStore

__all__ = ["MAIL_HOSTNAMES", "SERVICES", "SMTPService", "lab_mail_store", "mail_root"]

#: The names the lab mail certificate carries.
MAIL_HOSTNAMES = ("mail.example.com", "smtp.example.com", "localhost")


def mail_root(state_dir: Path) -> Path:
    """Where a lab keeps its mail store (accounts and Maildirs)."""
    return state_dir / "mail"


def lab_mail_store(lab: LabContext) -> MailStore:
    """The lab's store, with the lab accounts and, for an empty mailbox, the seeded messages."""
    from wirelab.config import private_dir
    from wirelab.mail.seed import seed_store
    from wirelab.mail.store import MailStore

    store = MailStore(private_dir(mail_root(lab.state_dir)))
    seed_store(store, lab.accounts)
    return store


def _opener(lab: LabContext, *, implicit_tls: bool) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        import asyncio

        from wirelab.smtp.server import SMTPSettings, open_smtp_server

        store = await asyncio.to_thread(lab_mail_store, lab)
        context = await asyncio.to_thread(lab.server_ssl_context, list(MAIL_HOSTNAMES))
        settings = SMTPSettings(store, tls_context=context, implicit_tls=implicit_tls)
        return await open_smtp_server(host, port, settings)

    return open_endpoint


class SMTPService(DeclaredService):
    """aiosmtpd with our handler: STARTTLS and AUTH on ``smtp``, implicit TLS on ``smtps``."""

    name = "smtp"
    host = "mail.example.com"
    chapter = 13
    description = "SMTP mail host: STARTTLS, AUTH after TLS, durable Maildir delivery (ch. 13)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (
            Endpoint("smtp", _opener(lab, implicit_tls=False)),
            Endpoint("smtps", _opener(lab, implicit_tls=True), tls=True),
        )


SERVICES = (SMTPService(),)
