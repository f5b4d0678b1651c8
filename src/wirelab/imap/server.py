"""The lab's IMAP server (chapter 15): pymap's IMAP engine over the store's Maildirs.

pymap (docs/decisions/0140) parses and answers IMAP4rev1; we give it three things of ours:

* **the accounts and mailboxes**: :class:`StoreLogin` checks passwords against
  :class:`~wirelab.mail.store.MailStore` (scrypt, in a thread) and opens the account's own
  Maildir, the one SMTP delivers into and POP3 reads, with pymap's Maildir++ layout;
* **the connection**: each connection runs on :class:`ConnectionServer` (cap with a ``* BYE``
  refusal, idle timeout, implicit TLS for ``imaps``), not on pymap's own listener;
* **literal limits**: pymap's line reader takes a non-synchronizing literal (``{N+}``) of
  any size before its parser sees it; :class:`_BoundedConnection` refuses one over
  :attr:`IMAPSettings.max_literal` (or a line over :attr:`IMAPSettings.max_line`) with
  ``* BYE`` *before reading it*. Synchronizing literals are checked by pymap's parser before
  it sends the continuation.

LOGIN and AUTHENTICATE are refused before STARTTLS (pymap's ``LOGINDISABLED``; pymap would
waive it for a loopback peer, and every lab peer is one, so we turn that off); pymap's own
debug log, which would show a LOGIN line with its password, is kept at INFO.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import secrets
import socket
import ssl
from argparse import Namespace
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, closing, suppress
from dataclasses import dataclass
from typing import Any

from wirelab.mail.store import MailStore
from wirelab.net.addresses import listen_tcp
from wirelab.net.server import ConnectionServer, last_word

__all__ = ["IMAPServer", "IMAPSettings", "open_imap_server"]

log = logging.getLogger("wirelab.imap.server")
# pymap logs every line at DEBUG, LOGIN passwords included: never let that through
logging.getLogger("pymap").setLevel(logging.INFO)

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n$")


@dataclass
class IMAPSettings:
    """What the lab IMAP server needs.

    Attributes:
        store: the Maildirs and accounts.
        tls_context: the server context (STARTTLS, or every connection with ``implicit_tls``).
        implicit_tls: TLS from the first byte (the ``imaps`` endpoint).
        max_literal: the largest literal (an APPEND'd message) taken, in bytes.
        max_line: the longest command line, in bytes.
        max_connections: connections at once; when full, the connection quiet for longest
            is closed to serve the newcomer.
        idle_timeout: seconds a connection may stay silent (RFC 9051 says 30 minutes).
        hostname: the name in the greeting.
        fast_fetch: answer the commonest FETCH shapes without pymap's parser and response
            objects (same bytes; decision 0144); off only to compare the two paths.
    """

    store: MailStore
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    max_literal: int = 10_240_000
    max_line: int = 64 << 10
    max_connections: int = 64
    idle_timeout: float = 1800.0
    hostname: str = "mail.example.com"
    fast_fetch: bool = True


class _Capture:
    """A pysasl identity that keeps the secret it is shown (checked later, in a thread)."""

    def __init__(self) -> None:
        self.secret: str | None = None

    def compare_authcid(self, authcid: str) -> bool:
        return True

    def compare_secret(self, secret: str) -> bool:
        self.secret = secret
        return True


def _secret_of(credentials: Any) -> str | None:
    capture = _Capture()
    try:
        credentials.verify(capture)
    except Exception:  # a mechanism without a secret (EXTERNAL ...)
        return None
    return capture.secret


def _engine(settings: IMAPSettings, executor: ThreadPoolExecutor) -> tuple[Any, Any]:
    """pymap's config and our login for ``settings``; pymap's file work runs in ``executor``."""
    from pymap.backend.maildir import Config, FilterSet, Session
    from pymap.backend.maildir.layout import MaildirLayout
    from pymap.concurrent import Subsystem
    from pymap.exceptions import InvalidAuth
    from pymap.interfaces.login import IdentityInterface, LoginInterface
    from pymap.user import UserMetadata

    from wirelab.imap._folder import CachedMailboxSet
    from wirelab.imap._messages import BytesMaildir
    from wirelab.imap._speedups import speed_up_pymap

    speed_up_pymap()

    store = settings.store
    hostname = settings.hostname
    from mailbox import MaildirMessage

    class _RawMessage(MaildirMessage):
        """A Maildir message whose bytes are the file's, not the email package's re-rendering
        (which turns CRLF into LF and may re-fold headers): FETCH BODY[] is byte-identical."""

        raw = b""

        def __bytes__(self) -> bytes:
            return self.raw

    class RawMaildir(BytesMaildir):
        def get_message(self, key: str) -> MaildirMessage:
            message = super().get_message(key)
            raw = _RawMessage(message)
            with open(self._lookup_path(key), "rb") as file:
                raw.raw = file.read()
            return raw

        def _lookup_path(self, key: str) -> str:
            return os.path.join(self._path, self._lookup(key))

    class LabConfig(Config):
        @property
        def greeting(self) -> bytes:
            return b"Server ready " + hostname.encode("ascii")

    context = settings.tls_context or ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    config = LabConfig(
        Namespace(proxy_protocol=None, passlib_cfg=None, inherited_sockets=None),
        host=None,
        port=0,
        base_dir=str(store.root),
        layout="++",
        colon=None,
        ssl_context=context,
        tls_enabled=settings.tls_context is not None and not settings.implicit_tls,
        subsystem=Subsystem.for_asyncio(),
        cpu_subsystem=Subsystem.for_asyncio(),
        max_append_len=settings.max_literal,
        reject_dnsbl=False,
        invalid_user_sleep=1.0,
    )

    class StoreIdentity(IdentityInterface):
        def __init__(self, name: str) -> None:
            self._name = name

        @property
        def name(self) -> str:
            return self._name

        @property
        def roles(self) -> frozenset[str]:
            return frozenset()

        async def new_token(self, *, expiration: Any = None) -> str | None:
            return None

        @asynccontextmanager
        async def new_session(self) -> AsyncIterator[Any]:
            path = await asyncio.to_thread(store.maildir, self._name)
            layout = MaildirLayout.get(str(path), config.layout, RawMaildir)
            maildir = RawMaildir(str(path), create=False)
            folders = CachedMailboxSet(maildir, layout)
            yield Session(self._name, config, folders, FilterSet(str(path)))

        async def get(self) -> Any:
            return UserMetadata(config, self._name)

        async def set(self, metadata: Any) -> None:
            raise InvalidAuth()

        async def delete(self) -> None:
            raise InvalidAuth()

    class StoreLogin(LoginInterface):
        @property
        def tokens(self) -> Any:
            from pymap.token import AllTokens

            return AllTokens(config)

        async def authenticate(self, credentials: Any) -> StoreIdentity:
            user = str(credentials.authcid)
            secret = _secret_of(credentials)
            ok = isinstance(secret, str) and await asyncio.to_thread(
                store.authenticate, user, secret
            )
            if not ok:
                log.info("login as %r failed", user[:64])
                await asyncio.sleep(config.invalid_user_sleep)
                raise InvalidAuth()
            log.info("%s logged in", user)
            return StoreIdentity(user)

        async def authorize(self, authenticated: Any, authzid: str) -> StoreIdentity:
            if authzid != authenticated.name:
                from pymap.exceptions import AuthorizationFailure

                raise AuthorizationFailure()
            return StoreIdentity(authzid)

    return config, StoreLogin()


def _handler(settings: IMAPSettings, executor: ThreadPoolExecutor) -> Any:
    from proxyprotocol.sock import SocketInfoLocal
    from pymap.context import connection_exit
    from pymap.imap import IMAPConnection
    from pymap.imap.state import ConnectionState
    from pymap.parsing.response import CommandResponse, Response
    from pymap.parsing.state import ParsingInterrupt, ParsingState

    from wirelab.imap._fastfetch import FastFetchOk, FastFetchState, recognise

    config, login = _engine(settings, executor)
    fast = settings.fast_fetch

    class _NoLoopbackTrust(SocketInfoLocal):
        """pymap lets a loopback peer LOGIN in clear; the whole lab is loopback, so no."""

        @property
        def from_localhost(self) -> bool:
            return False

    class _BoundedConnection(IMAPConnection):
        """pymap's connection with its line reader bounded (see the module docstring)."""

        async def readline(self) -> memoryview:
            buf = bytearray()
            while True:
                try:
                    line = await self.reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    raise EOFError("line too long") from exc
                except asyncio.IncompleteReadError as exc:
                    raise EOFError() from exc
                buf += line
                if len(buf) > settings.max_line:
                    raise EOFError("line too long")
                match = _LITERAL.search(line)
                if match is None:
                    return memoryview(buf)
                size = int(match.group(1))
                if size > settings.max_literal:
                    log.info("refused a %d-byte literal (limit %d)", size, settings.max_literal)
                    self.writer.write(b"* BYE [TOOBIG] literal over the size limit\r\n")
                    raise EOFError("literal too big")
                if not line.endswith(b"+}\n") and not line.endswith(b"+}\r\n"):
                    return memoryview(buf)  # synchronizing: pymap's parser asks for it
                buf += await self.reader.readexactly(size)

        async def read_command(self, state: Any) -> Any:
            """pymap's, with the commonest FETCH shapes recognised first (``_fastfetch``)."""
            line = await self.readline()
            if fast:
                fetch = recognise(line, self.params)
                if fetch is not None:
                    return fetch
            conts: list[memoryview] = []
            while True:
                params = self.params.copy(ParsingState(continuations=conts))
                try:
                    cmd, _ = self.commands.parse(line, params)
                except ParsingInterrupt as interrupt:
                    await self._interrupt(state, interrupt, conts)
                else:
                    return cmd

        async def write_response(self, resp: Any) -> None:
            """Each response in as few writes as possible, a long one streamed.

            pymap writes a response piece by piece (each a TLS record and a segment of its
            own) and the whole of it before it waits for the peer: a ``FETCH 1:*`` of large
            messages would sit in memory. We gather the pieces and send them at each
            :data:`_FLUSH_AT` bytes, waiting for the peer to take them (FETCH loads each
            message's content as it is written, so one message at a time is in memory).
            """
            out = _Gathered(self.writer)
            try:
                if isinstance(resp, FastFetchOk) and resp.plain:
                    await resp.write_fast(out, _FLUSH_AT)
                elif isinstance(resp, CommandResponse):
                    for untagged in list(resp._untagged):
                        await untagged.async_write(out)
                        if out.size >= _FLUSH_AT:
                            await out.flush()
                    Response.write(resp, out)
                else:
                    await resp.async_write(out)
                await out.flush()
            except ConnectionError:
                pass

        async def read_continuation(self, literal_length: int) -> memoryview:
            if literal_length > settings.max_literal:
                raise EOFError("literal too big")
            return memoryview(
                await self.reader.readexactly(literal_length) + bytes(await self.readline())
            )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config.apply_context()  # pymap's context variables, in this connection's task
        transport = writer.transport
        _no_delay(writer)
        info = _NoLoopbackTrust(transport, unique_id=secrets.token_bytes(16))
        connection = _BoundedConnection(config.commands, config, reader, writer, info)
        state = (FastFetchState if fast else ConnectionState)(login, config)
        async with AsyncExitStack() as stack:
            connection_exit.set(stack)
            stack.enter_context(closing(connection))
            await connection.run(state)

    return handle


#: a response is sent whenever this much of it is gathered
_FLUSH_AT = 256 << 10


class _Gathered:
    """pymap's ``WriteStream`` that gathers a response's pieces for one write."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self.size += len(data)

    async def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            self.size = 0
            self._writer.write(data)
        await self._writer.drain()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """Send each response at once (TCP_NODELAY).

    asyncio sets it only on sockets made with ``IPPROTO_TCP`` as their protocol, which ours
    are not; without it a response written in several pieces (a FETCH: the untagged line,
    the literal, the tagged line) waits for the client's delayed ACK, 40 ms a command.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _stop_executor(executor: ThreadPoolExecutor) -> None:
    """Stop pymap's workers; their private event loops close when collected, so collect."""
    executor.shutdown(wait=True, cancel_futures=True)
    gc.collect()


class IMAPServer(ConnectionServer):
    """A :class:`ConnectionServer` that also stops pymap's worker threads when closed."""

    executor: ThreadPoolExecutor | None = None

    async def aclose(self) -> None:
        await super().aclose()
        if self.executor is not None:
            await asyncio.to_thread(_stop_executor, self.executor)


async def open_imap_server(host: str | None, port: int, settings: IMAPSettings) -> IMAPServer:
    """Listen on ``host``:``port`` and serve IMAP from ``settings.store``.

    Raises:
        ConnectError: the address cannot be bound.
    """
    executor = ThreadPoolExecutor(4, thread_name_prefix="wirelab-imap")
    try:
        handle = await asyncio.to_thread(_handler, settings, executor)

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await last_word(reader, writer, b"* BYE [UNAVAILABLE] too many connections\r\n")

        server = IMAPServer(
            handle,
            name="imaps" if settings.implicit_tls else "imap",
            max_connections=settings.max_connections,
            idle_timeout=settings.idle_timeout,
            on_overload=refuse,
            ssl_context=settings.tls_context if settings.implicit_tls else None,
            evict_idlest=True,
        )
        server.executor = executor
        await server.start(listen_tcp(host, port))
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    return server
