"""The lab mail host's POP3 service (chapter 14): ``mail.example.com``.

Endpoint ``pop3`` (10110, the book's 110 shifted) offers STLS and takes USER/PASS only after
it (APOP at any time); ``pop3s`` (10995, the book's 995) is TLS from the first byte, which is
what the book's ``poplib.POP3_SSL`` scripts expect. Both serve the store the SMTP service
delivers into (:func:`wirelab.smtp.service.lab_mail_store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "POP3Service"]


def _opener(lab: LabContext, *, implicit_tls: bool) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        import asyncio

        from wirelab.pop.server import POP3Settings, open_pop3_server
        from wirelab.smtp.service import MAIL_HOSTNAMES, lab_mail_store

        store = await asyncio.to_thread(lab_mail_store, lab)
        context = await asyncio.to_thread(lab.server_ssl_context, list(MAIL_HOSTNAMES))
        settings = POP3Settings(
            store,
            tls_context=context,
            implicit_tls=implicit_tls,
            apop_secrets={account.user: account.password for account in lab.accounts},
        )
        return await open_pop3_server(host, port, settings)

    return open_endpoint


class POP3Service(DeclaredService):
    """Our POP3 server: STLS and APOP on ``pop3``, implicit TLS on ``pop3s``."""

    name = "pop3"
    host = "mail.example.com"
    chapter = 14
    description = "POP3 mail host: STLS, USER/PASS after TLS, APOP, deletions at QUIT (ch. 14)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (
            Endpoint("pop3", _opener(lab, implicit_tls=False)),
            Endpoint("pop3s", _opener(lab, implicit_tls=True), tls=True),
        )


SERVICES = (POP3Service(),)
