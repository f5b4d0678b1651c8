"""The lab mail host's IMAP service (chapter 15): ``mail.example.com``.

Endpoint ``imap`` (10143, the book's 143 shifted) offers STARTTLS and refuses LOGIN before
it; ``imaps`` (10993, the book's 993) is TLS from the first byte, what the book's
``IMAP4_SSL`` and ``IMAPClient(ssl=True)`` scripts use. Both serve the store the SMTP
service delivers into and the POP3 service reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "IMAPService"]


def _opener(lab: LabContext, *, implicit_tls: bool) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        import asyncio

        from wirelab.imap.server import IMAPSettings, open_imap_server
        from wirelab.smtp.service import MAIL_HOSTNAMES, lab_mail_store

        store = await asyncio.to_thread(lab_mail_store, lab)
        context = await asyncio.to_thread(lab.server_ssl_context, list(MAIL_HOSTNAMES))
        settings = IMAPSettings(store, tls_context=context, implicit_tls=implicit_tls)
        return await open_imap_server(host, port, settings)

    return open_endpoint


class IMAPService(DeclaredService):
    """pymap over the lab store: STARTTLS on ``imap``, implicit TLS on ``imaps``."""

    name = "imap"
    host = "mail.example.com"
    chapter = 15
    description = "IMAP mail host (pymap): STARTTLS, LOGIN only after TLS, literal limit (ch. 15)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (
            Endpoint("imap", _opener(lab, implicit_tls=False)),
            Endpoint("imaps", _opener(lab, implicit_tls=True), tls=True),
        )


SERVICES = (IMAPService(),)
