"""The lab's POP3 server (chapter 14): :mod:`wirelab.pop._core` on :class:`ConnectionServer`.

It serves the Maildirs of :class:`~wirelab.mail.store.MailStore`, the store the SMTP server
delivers into, so a message sent over SMTP is fetched over POP3 byte for byte. The adapter
does only what the core asks: check a password (scrypt, in a thread), start TLS, read a
message file, and, after QUIT and nothing else, unlink the messages marked deleted.

* With :attr:`POP3Settings.exclusive_lock`, one session per maildrop at a time (RFC 1939's
  lock): a second login to the same account is told ``-ERR [IN-USE]``.
* A failed login waits :attr:`POP3Settings.auth_failure_delay` before its ``-ERR``; three
  close the connection. Passwords and digests never reach a log line.
* Connection cap and idle timeout from ConnectionServer; when full, the quietest connection
  is closed to serve a newcomer (a slow-client flood cannot lock users out).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wirelab.mail.store import MailStore
from wirelab.net.server import ConnectionServer, last_word, peer_name
from wirelab.pop._core import (
    CheckApop,
    CheckPassword,
    Close,
    CommandReader,
    Commit,
    Fetch,
    Listing,
    POP3Session,
    Reply,
    StartTLS,
    apop_digest,
    encode_multiline,
)

__all__ = ["POP3Settings", "apply_deletions", "open_pop3_server"]

log = logging.getLogger("wirelab.pop.server")

#: Maildrops in a session right now: (store root, user).
_LOCKED: set[tuple[Path, str]] = set()


@dataclass
class POP3Settings:
    """What the lab POP3 server needs.

    Attributes:
        store: the Maildirs and accounts.
        hostname: the name in the greeting and the APOP timestamp.
        tls_context: the server context (STLS, or every connection with ``implicit_tls``).
        implicit_tls: TLS from the first byte (the ``pop3s`` endpoint).
        apop_secrets: the shared secrets APOP needs in clear (the lab accounts'); a user
            without one cannot use APOP.
        max_connections: sessions at once; one more is told ``-ERR [SYS/TEMP]``.
        idle_timeout: seconds a session may stay silent (RFC 1939 says at least 600).
        auth_failure_delay: seconds before the ``-ERR`` of a failed login.
        evict_idlest: when full, close the connection quiet for longest (a session that
            never QUITs deletes nothing) and serve the newcomer, so slow clients cannot
            hold every slot; ``False`` refuses the newcomer with ``-ERR [SYS/TEMP]``.
        exclusive_lock: one session per maildrop (RFC 1939's lock; a second login gets
            ``-ERR [IN-USE]``). Off by default, as Dovecot's ``pop3_lock_session``: Maildir
            messages never change, and a deletion by key is harmless twice.
    """

    store: MailStore
    hostname: str = "mail.example.com"
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    apop_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_connections: int = 64
    idle_timeout: float = 600.0
    auth_failure_delay: float = 1.0
    evict_idlest: bool = True
    exclusive_lock: bool = False


def apply_deletions(store: MailStore, user: str, keys: tuple[str, ...]) -> int:
    """Unlink the messages ``keys`` of ``user``; how many could not be removed.

    A message already gone counts as removed (another client deleted it).
    """
    if not keys:
        return 0
    wanted = set(keys)
    failed = 0
    folders: set[Path] = set()
    for message in store.messages(user):
        if message.key in wanted:
            try:
                message.path.unlink()
                folders.add(message.path.parent)
            except FileNotFoundError:
                pass
            except OSError:
                failed += 1
    for folder in folders:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return failed


def _listing(store: MailStore, user: str) -> tuple[list[Listing], dict[str, Path]]:
    found = store.messages(user)
    return [Listing(m.key, m.size) for m in found], {m.key: m.path for m in found}


def _no_delay(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY: asyncio sets it only on sockets made with ``IPPROTO_TCP``, not ours; a
    reply's last partial segment must not wait for the client's delayed ACK."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: messages up to this size are read on the event loop, larger ones in a thread
_READ_INLINE = 64 << 10


def _read(store: MailStore, user: str, key: str, paths: dict[str, Path]) -> bytes | None:
    """Message ``key``: from the path seen at login, else (moved from ``new/`` to ``cur/``
    by an IMAP client meanwhile) found again."""
    path = paths.get(key)
    if path is not None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        except OSError:
            return None
    for message in store.messages(user):
        if message.key == key:
            paths[key] = message.path
            try:
                return message.read_bytes()
            except OSError:
                return None
    return None


class _Connection:
    def __init__(
        self, settings: POP3Settings, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.peer = peer_name(writer)
        stamp = f"<{os.getpid()}.{time.time_ns()}.{secrets.token_hex(4)}@{settings.hostname}>"
        self.session = POP3Session(
            stamp.encode("ascii"),
            tls=settings.implicit_tls,
            tls_available=settings.tls_context is not None and not settings.implicit_tls,
            hostname=settings.hostname,
        )
        self.commands = CommandReader()
        self.lock: tuple[Path, str] | None = None
        self.pipelined = False
        self.paths: dict[str, Path] = {}

    async def run(self) -> None:
        try:
            self.writer.write(self.session.greeting())
            await self.writer.drain()
            while True:
                data = await self.reader.read(64 << 10)
                if not data:
                    if self.session.state == "TRANSACTION":
                        log.info(
                            "%s: %s dropped the connection; nothing deleted",
                            self.peer,
                            self.session.user,
                        )
                    return
                events = self.commands.feed(data)
                for index, event in enumerate(events):
                    reply = self.session.handle(event)
                    self.pipelined = index + 1 < len(events)
                    go_on = await self._perform(reply)
                    if go_on == "close":
                        return
                    if go_on == "tls":
                        break
        finally:
            if self.lock is not None:
                _LOCKED.discard(self.lock)

    async def _perform(self, reply: Reply) -> str:
        """Send ``reply`` and do its action; ``close``, ``tls`` or ``next``."""
        action = reply.action
        settings = self.settings
        if isinstance(action, CheckPassword | CheckApop):
            return await self._perform(await self._login(action))
        if isinstance(action, Fetch):
            assert self.session.user is not None
            if 0 < action.size <= _READ_INLINE:  # a page-cache read: cheaper than a thread hop
                data = _read(settings.store, self.session.user, action.key, self.paths)
            else:
                data = await asyncio.to_thread(
                    _read, settings.store, self.session.user, action.key, self.paths
                )
            if data is None:
                self.writer.write(b"-ERR [SYS/TEMP] the message is no longer there\r\n")
            else:
                self.writer.write(reply.data + encode_multiline(data, action.body_lines))
            await self.writer.drain()
            return "next"
        if isinstance(action, Commit):
            assert self.session.user is not None
            failed = await asyncio.to_thread(
                apply_deletions, settings.store, self.session.user, action.keys
            )
            log.info(
                "%s: %s quit; %d deleted, %d failed",
                self.peer,
                self.session.user,
                len(action.keys) - failed,
                failed,
            )
            return await self._perform(self.session.commit_result(failed))
        self.writer.write(reply.data)
        await self.writer.drain()
        if isinstance(action, Close):
            return "close"
        if isinstance(action, StartTLS):
            assert settings.tls_context is not None
            self.commands.discard()  # RFC 2595 section 4: nothing pipelined before TLS counts
            pending = getattr(self.reader, "_buffer", b"")
            if pending or self.pipelined:
                log.info("%s: data sent before the TLS handshake; closing", self.peer)
                return "close"
            try:
                await self.writer.start_tls(settings.tls_context, ssl_handshake_timeout=10.0)
            except (ssl.SSLError, OSError, TimeoutError) as exc:
                log.info("%s: TLS handshake failed: %s", self.peer, exc)
                return "close"
            return "tls"
        return "next"

    async def _login(self, action: CheckPassword | CheckApop) -> Reply:
        settings = self.settings
        store = settings.store
        user = action.user
        if isinstance(action, CheckPassword):
            ok = await asyncio.to_thread(store.authenticate, user, action.password)
            how = "USER/PASS"
        else:
            secret = settings.apop_secrets.get(user)
            expected = apop_digest(action.timestamp, secret) if secret is not None else ""
            ok = bool(expected) and hmac.compare_digest(expected, action.digest)
            ok = ok and await asyncio.to_thread(store.has_user, user)
            how = "APOP"
        if not ok:
            log.info("%s: %s login as %r failed", self.peer, how, user[:64])
            await asyncio.sleep(settings.auth_failure_delay)
            return self.session.login_result(user, False)
        lock = (store.root, user)
        if settings.exclusive_lock and lock in _LOCKED:
            return self.session.login_result(
                user, False, reason="[IN-USE] the maildrop is in use by another session"
            )
        _LOCKED.add(lock)
        self.lock = lock
        listing, self.paths = await asyncio.to_thread(_listing, store, user)
        log.info("%s: %s logged in (%s, %d messages)", self.peer, user, how, len(listing))
        return self.session.login_result(user, True, listing)


async def open_pop3_server(host: str | None, port: int, settings: POP3Settings) -> ConnectionServer:
    """Listen on ``host``:``port`` and serve POP3 from ``settings.store``.

    Raises:
        ConnectError: the address cannot be bound.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _no_delay(writer)
        await _Connection(settings, reader, writer).run()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await last_word(reader, writer, b"-ERR [SYS/TEMP] too many connections, try later\r\n")

    return await ConnectionServer.open(
        handle,
        host,
        port,
        name="pop3s" if settings.implicit_tls else "pop3",
        max_connections=settings.max_connections,
        idle_timeout=settings.idle_timeout,
        on_overload=refuse,
        ssl_context=settings.tls_context if settings.implicit_tls else None,
        evict_idlest=settings.evict_idlest,
    )
