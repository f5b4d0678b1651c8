"""The lab mail host's SMTP server: aiosmtpd with our handler and policy (chapter 13).

aiosmtpd (>= 1.4.5, which fixed its SMTP smuggling hole) speaks the protocol; we decide:

* **Who gets mail**: recipients only in :data:`~wirelab.mail.store.LAB_DOMAINS`, and only
  existing accounts. Anything else is ``550 5.7.1`` relaying denied: never an open relay.
* **TLS and AUTH**: the ``smtp`` endpoint offers STARTTLS; AUTH PLAIN and LOGIN are advertised
  and accepted only after it (``538 5.7.11`` before). Commands pipelined before the TLS
  handshake are discarded (aiosmtpd clears its buffer, RFC 3207 section 4.2). The ``smtps``
  endpoint is TLS from the first byte. Mail *to* the lab needs no login, as at any MX (the
  book's scripts send without one); the login is what a submission client does.
* **Durability**: a 250 after DATA only once the message is durable in the store's spool
  journal (:meth:`wirelab.mail.store.MailStore.accept_async`: appended and ``fdatasync``-ed
  by the journal writer thread, concurrent messages sharing one sync; the loop never
  blocks). The Maildir delivery (data synced, renamed into ``new/``, ``new/`` synced) follows
  at once; the reply to ``QUIT`` waits until the session's messages are in ``new/``, so a
  client that has quit finds them there (decision 0122). A full spool is ``452``.
* **Smuggling**: a bare CR or LF anywhere in DATA is refused with ``550 5.6.11``, so no
  ``\\n.\\n``, ``\\r.\\r`` or ``\\n.\\r\\n`` trick can end a message early on a server that
  reads them differently downstream.
* **Bounds**: command lines 512 bytes, text lines 1001 (RFC 5321 4.5.3.1), SIZE advertised and
  enforced, :attr:`SMTPSettings.max_recipients`, :attr:`SMTPSettings.max_connections` (one
  more gets ``421``), an idle timeout per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from wirelab.errors import WirelabError
from wirelab.mail.spool import SpoolFull
from wirelab.mail.store import LAB_DOMAINS, MAX_MESSAGE_BYTES, MailStore, StoredMessage
from wirelab.net.server import OverloadLog

__all__ = [
    "BARE_LINE_END",
    "LabHandler",
    "LabSMTP",
    "SMTPSettings",
    "close_connections",
    "has_bare_line_end",
    "open_smtp_server",
]

log = logging.getLogger("wirelab.smtp.server")

_OVERLOAD = OverloadLog()


class _LoginDataNoise(logging.Filter):
    """aiosmtpd logs a warning on every AUTH about ``Session.login_data``, an attribute it
    sets itself (nothing of ours to fix): one noise line per login in the lab's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_LoginDataNoise())

#: A CR not followed by LF, or an LF not preceded by CR.
BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def has_bare_line_end(data: bytes) -> bool:
    """True when ``data`` has a CR not followed by LF or an LF not preceded by CR.

    The same answer as :data:`BARE_LINE_END` ``.search``, by counting (every CR and every LF
    must be part of a CRLF), which is twenty times faster on a 1 MiB message than the regex's
    look-behind at every byte.
    """
    pairs = data.count(b"\r\n")
    return data.count(b"\r") != pairs or data.count(b"\n") != pairs


@dataclass
class SMTPSettings:
    """What the lab SMTP server needs.

    Attributes:
        store: where mail is delivered.
        hostname: the name in the greeting and EHLO reply.
        tls_context: the server context (STARTTLS, or every connection with ``implicit_tls``).
        implicit_tls: TLS from the first byte (the ``smtps`` endpoint).
        max_message_bytes: SIZE, advertised and enforced.
        max_recipients: RCPT TO per message.
        max_connections: open connections at once; one more is told ``421`` and closed.
        idle_timeout: seconds a connection may stay silent.
        evict_after: at the cap, a connection with no complete command for this long may be
            closed to make room for a newcomer (a slowloris dribbles bytes, never commands).
        domains: the domains delivered locally.
    """

    store: MailStore
    hostname: str = "mail.example.com"
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_recipients: int = 50
    max_connections: int = 100
    idle_timeout: float = 60.0
    evict_after: float = 0.1
    domains: frozenset[str] = LAB_DOMAINS
    open_connections: list[int] = field(default_factory=lambda: [0])
    live: set[LabSMTP] = field(default_factory=set)


def _split(address: str) -> tuple[str, str] | None:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    return local.lower(), domain.lower().rstrip(".")


class LabHandler:
    """aiosmtpd handler: recipients, bare line ends, durable delivery."""

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.settings.max_recipients})"
        parts = _split(address)
        if parts is None:
            return "553 5.1.3 Recipient address must be user@domain"
        user, domain = parts
        if domain not in self.settings.domains:
            return f"550 5.7.1 Relaying denied: this lab host delivers only to {_domains()}"
        if not self.settings.store.has_user(user):  # a stat; the file is read when it changed
            return f"550 5.1.1 No such user here: {user}@{domain}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if has_bare_line_end(content):
            log.info("refused a message with a bare CR or LF from %s", session.peer)
            return "550 5.6.11 Bare CR or LF in the message: lines must end with CRLF"
        users = sorted({parts[0] for rcpt in envelope.rcpt_tos if (parts := _split(rcpt))})
        try:
            visible = await self.settings.store.accept_async(users, content)
        except SpoolFull:
            log.warning("refused a message: the mail spool is full")
            return "452 4.3.1 Insufficient system storage: the mail spool is full, try again later"
        except WirelabError as exc:
            log.warning("delivery failed: %s", exc)
            return "451 4.3.0 Temporary failure storing the message, try again later"
        if isinstance(server, LabSMTP):
            server.accepted(visible)
        log.info("accepted %d bytes for %s", len(content), ", ".join(users))
        return f"250 2.0.0 OK: stored for {len(users)} mailbox(es)"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """``221`` once this session's accepted messages are in their Maildirs' ``new/``
        (about a millisecond after their 250), so a client that has quit finds them there."""
        if isinstance(server, LabSMTP):
            await server.settle()
        return "221 Bye"


def _domains() -> str:
    return ", ".join(sorted(LAB_DOMAINS - {"localhost"}))


class LabSMTP(SMTP):
    """aiosmtpd's protocol with a connection cap shared by one server's connections.

    At the cap, the connection that has been quiet longest (no complete command for at least
    :attr:`SMTPSettings.evict_after` seconds, not inside DATA) is told ``421`` and closed to
    make room: a few hundred slow or silent connections cannot lock everyone else out. When every
    connection is busy, the newcomer gets the ``421`` instead. One warning line per burst.
    """

    def __init__(self, settings: SMTPSettings, handler: LabHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._settings = settings
        self._counted = False
        self._last_active = time.monotonic()
        self._in_data = False
        self._visible: list[Future[StoredMessage]] = []

    def accepted(self, visible: list[Future[StoredMessage]]) -> None:
        """Remember the Maildir deliveries of a message this session was told 250 for."""
        self._visible = [future for future in self._visible if not future.done()]
        self._visible += visible

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until this session's accepted messages are in ``new/`` (or failed: then they
        stay in the spool for the next start; the wait never hangs a client for long)."""
        pending = [asyncio.wrap_future(f) for f in self._visible if not f.done()]
        self._visible = []
        if pending:
            await asyncio.wait(pending, timeout=timeout)
            for future in pending:  # retrieved, so a failure logs no "never retrieved"
                if future.done() and not future.cancelled():
                    future.exception()

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd calls this after every complete command: our "last active" clock too
        self._last_active = time.monotonic()
        super()._reset_timeout(duration)

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False

    def _evict_idlest(self) -> bool:
        now = time.monotonic()
        candidates = [
            p
            for p in self._settings.live
            if not p._in_data and now - p._last_active >= self._settings.evict_after and p.transport
        ]
        if not candidates:
            return False
        idlest = min(candidates, key=lambda p: p._last_active)
        transport = idlest.transport
        assert isinstance(transport, asyncio.WriteTransport)
        with contextlib.suppress(Exception):
            transport.write(b"421 4.4.2 Closing an idle connection to make room\r\n")
        transport.close()
        idlest._release()
        return True

    def _release(self) -> None:
        if self._counted:
            self._settings.open_connections[0] -= 1
            self._counted = False
            self._settings.live.discard(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # the first call (a second one follows STARTTLS)
            counter = self._settings.open_connections
            if counter[0] >= self._settings.max_connections:
                evicted = self._evict_idlest()
                burst = _OVERLOAD.event()
                if burst is not None:
                    log.warning(
                        "at the cap of %d connections: %s (%d such events)",
                        self._settings.max_connections,
                        "closed the idlest" if evicted else "refused a newcomer",
                        burst,
                    )
            if counter[0] >= self._settings.max_connections:
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
                transport.close()
                return
            counter[0] += 1
            self._counted = True
            self._settings.live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._release()
        if self.session is not None:
            super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if self.session is None:
            return None
        return super().eof_received()


def _authenticator(store: MailStore) -> Callable[..., AuthResult]:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = store.authenticate(user, password)
        log.info("AUTH %s for %r: %s", mechanism, user, "accepted" if ok else "refused")
        return AuthResult(success=ok, handled=False)

    return authenticate


def protocol_factory(settings: SMTPSettings) -> Callable[[], LabSMTP]:
    """A factory of :class:`LabSMTP` protocols for ``loop.create_server``."""
    handler = LabHandler(settings)
    authenticator = _authenticator(settings.store)

    def factory() -> LabSMTP:
        return LabSMTP(
            settings,
            handler,
            data_size_limit=settings.max_message_bytes,
            hostname=settings.hostname,
            ident="wirelab SMTP",
            tls_context=None if settings.implicit_tls else settings.tls_context,
            require_starttls=False,
            timeout=settings.idle_timeout,
            authenticator=authenticator,
            auth_required=False,
            # an implicit-TLS listener is TLS already; aiosmtpd only knows STARTTLS
            auth_require_tls=not settings.implicit_tls,
            decode_data=False,
        )

    return factory


def close_connections(settings: SMTPSettings) -> None:
    """Close every open connection of a server (after ``server.close()``, on shutdown), and
    the store's spool journal (its undelivered messages still go to their Maildirs)."""
    for protocol in list(settings.live):
        transport = protocol.transport
        if transport is not None:
            transport.close()
        if protocol._handler_coroutine is not None:
            protocol._handler_coroutine.cancel()
    settings.store.close_spool()


async def open_smtp_server(host: str, port: int, settings: SMTPSettings) -> asyncio.Server:
    """Listen on ``host``:``port`` (TLS from the first byte with ``implicit_tls``).

    Raises:
        WirelabError: ``implicit_tls`` without a TLS context.
        OSError: the bind failed (the caller's seam maps it).
    """
    if settings.implicit_tls and settings.tls_context is None:
        raise WirelabError("implicit TLS needs a TLS context")
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        protocol_factory(settings),
        host,
        port,
        ssl=settings.tls_context if settings.implicit_tls else None,
        ssl_handshake_timeout=10.0 if settings.implicit_tls else None,
    )
