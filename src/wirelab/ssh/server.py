"""The lab SSH server (chapter 16) on asyncssh: the minimal shell, exec, SFTP and SCP.

What a client gets, per lab account:

* password authentication (the account's lab password) and public-key authentication (the
  keys in ``STATE/ssh/authorized_keys/USER``);
* a shell (with or without a PTY) that is :class:`wirelab.shell.MinimalShell`, never a
  system shell; ``exec`` requests run one line of it and return its exit status;
* SFTP (and SCP, which asyncssh serves through the same file system) confined to the
  account's lab home: ``/`` is the home, ``..`` cannot climb out, and a symbolic link that
  leads out of the home is refused, as is creating links.

Bad input: a failed login waits :attr:`SSHSettings.failure_delay` seconds times the
failures of that peer address so far (at most :attr:`SSHSettings.max_failure_delay`) and is
logged with the user and peer, never the password; authentication must finish within
:attr:`SSHSettings.login_timeout`; a shell that reads nothing for
:attr:`SSHSettings.idle_timeout` is closed; SFTP and SCP writes stop at
:attr:`SSHSettings.home_quota` bytes in the home (counted when a session starts, and each
write of the session after); at most :attr:`SSHSettings.max_connections`
connections at once: at the cap, the oldest connection that has not logged in is closed to
make room (a crowd of silent or dribbling connections cannot lock users out), and only when
every connection is logged in is the newcomer refused (a log line a second at most).

Why not on :class:`wirelab.net.server.ConnectionServer`: asyncssh owns its listener and the
transport (key exchange, channels); its own limits stand in for the caps here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import posixpath
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncssh

from wirelab.shell.minimal import MAX_LINE, MinimalShell

__all__ = ["ENCRYPTION_ALGS", "SSHAccount", "SSHListener", "SSHSettings", "open_ssh_server"]

#: The most peer addresses whose failed logins are counted at once.
MAX_TRACKED_PEERS = 4096

#: The ciphers the lab server offers: AES-GCM, then AES-CTR (with an encrypt-then-MAC MAC).
#: Not chacha20-poly1305: asyncssh builds it from three cipher contexts and a Poly1305 per
#: packet, about 1.6 times the CPU of AES per MiB in our measurements (decision 0161), and it
#: is the cipher the Terrapin attack (CVE-2023-48795) targets when a client lacks strict key
#: exchange. The client picks the first of *its* list that we offer: OpenSSH's default list
#: puts chacha20 first, then the CTR ciphers, then GCM, so OpenSSH clients get AES-CTR.
ENCRYPTION_ALGS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)

log = logging.getLogger("wirelab.ssh.server")

#: The most bytes of SSH packets held back to be written to the socket together.
COALESCE_LIMIT = 256 * 1024


class _CoalescingTransport(asyncio.Transport):
    """A connection's transport that writes the packets of one event-loop turn at once.

    asyncssh writes every SSH packet to its transport on its own, each behind an
    ``SSH_MSG_IGNORE`` it sends before every packet: a download in OpenSSH's 32 KiB channel
    packets is 64 writes per MiB, so 64 ``send`` calls on the socket, half of them of a few
    dozen bytes (and as many segments for the client to take in). Here the writes of one turn
    are held and go out together at the end of the turn, or as soon as
    :data:`COALESCE_LIMIT` bytes are held, as sshd writes its whole output buffer at once
    (decision 0162). The bytes and their order are unchanged. ``close`` and ``write_eof``
    write what is held first; ``abort`` drops it, as it drops the transport's own buffer.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._held: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: Any) -> None:
        if not data:
            return
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= COALESCE_LIMIT:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._end_of_turn)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            self._size = 0
            self._transport.write(data)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        if self._transport.is_closing():  # closed or aborted since: nobody to send to
            self._held.clear()
            self._size = 0
        else:
            self._flush()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class _CoalescingProtocol(asyncio.Protocol):
    """Passes everything to asyncssh's connection, which writes to a coalescing transport."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._conn.connection_made(_CoalescingTransport(transport))

    def data_received(self, data: bytes) -> None:
        self._conn.data_received(data)

    def eof_received(self) -> bool | None:
        return cast("bool | None", self._conn.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.connection_lost(exc)

    def pause_writing(self) -> None:
        self._conn.pause_writing()

    def resume_writing(self) -> None:
        self._conn.resume_writing()


class _CoalescingListener:
    """asyncssh's ``tunnel`` option for listeners: an object whose ``create_server`` makes the
    listening socket. Ours is an ordinary TCP listener whose connections write through
    :class:`_CoalescingTransport`; asyncssh runs the SSH server on them as on its own."""

    async def create_server(self, session_factory: Any, listen_host: str, listen_port: int) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _CoalescingProtocol(session_factory(listen_host, listen_port)),
            listen_host,
            listen_port,
        )

    def close(self) -> None:
        """Nothing to close: the server asyncssh gets from :meth:`create_server` is closed by it."""

    async def wait_closed(self) -> None:
        """Nothing to wait for (see :meth:`close`)."""


@dataclass(frozen=True)
class SSHAccount:
    """A login: name, password, lab home, and the file of its authorized public keys."""

    user: str
    password: str
    home: Path
    authorized_keys: Path | None = None


@dataclass
class SSHSettings:
    """What the lab SSH server serves and its limits."""

    host_key: asyncssh.SSHKey
    accounts: tuple[SSHAccount, ...]
    failure_delay: float = 1.0
    max_failure_delay: float = 5.0
    login_timeout: float = 30.0
    idle_timeout: float = 600.0
    command_timeout: float = 30.0
    max_connections: int = 64
    home_quota: int = 4 << 30
    encryption_algs: tuple[str, ...] = ENCRYPTION_ALGS
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    pending: dict[asyncssh.SSHServerConnection, None] = field(default_factory=dict)
    _last_warning: float = 0.0
    _unwarned: int = 0

    def warn_overload(self, message: str) -> None:
        """Log ``message`` at most once a second (with how many were not logged)."""
        now = time.monotonic()
        if now - self._last_warning < 1.0:
            self._unwarned += 1
            return
        extra = f" (and {self._unwarned} more like it)" if self._unwarned else ""
        log.warning("%s%s", message, extra)
        self._last_warning, self._unwarned = now, 0

    def account(self, user: str) -> SSHAccount | None:
        """The account named ``user``, if any."""
        return next((a for a in self.accounts if a.user == user), None)


class _LabSSHServer(asyncssh.SSHServer):
    def __init__(self, settings: SSHSettings) -> None:
        self._settings = settings
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "?"
        settings = self._settings
        if len(settings.connections) >= settings.max_connections:
            if not settings.pending:  # every connection is a logged-in user: refuse the new one
                settings.warn_overload(f"ssh: {self._peer} refused: all connections logged in")
                asyncio.get_running_loop().call_soon(conn.close)
                return
            # make room by closing the oldest connection that has not logged in yet
            oldest = next(iter(settings.pending))
            settings.pending.pop(oldest)
            settings.connections.discard(oldest)
            oldest.close()
            settings.warn_overload("ssh: at the connection cap: closed the oldest not logged in")
        settings.connections.add(conn)
        settings.pending[conn] = None

    def auth_completed(self) -> None:
        if self._conn is not None:
            self._settings.pending.pop(self._conn, None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._settings.connections.discard(self._conn)
            self._settings.pending.pop(self._conn, None)

    def begin_auth(self, username: str) -> bool:
        account = self._settings.account(username)
        if account is not None and account.authorized_keys and self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                if account.authorized_keys.exists():
                    keys = asyncssh.read_authorized_keys(str(account.authorized_keys))
                    self._conn.set_authorized_keys(keys)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        account = self._settings.account(username)
        ok = account is not None and hmac.compare_digest(
            account.password.encode(), password.encode()
        )
        if ok:
            self._settings.failures.pop(self._peer, None)
            log.info("ssh: %s logged in as %s with a password", self._peer, username)
            return True
        settings = self._settings
        if len(settings.failures) >= MAX_TRACKED_PEERS and self._peer not in settings.failures:
            settings.failures.clear()  # bounded memory; the delays start again from one
        settings.failures[self._peer] += 1
        count = settings.failures[self._peer]
        delay = min(settings.failure_delay * count, settings.max_failure_delay)
        log.warning(
            "ssh: failed password for %r from %s (failure %d; password redacted; waiting %.1f s)",
            username,
            self._peer,
            count,
            delay,
        )
        await asyncio.sleep(delay)
        return False


def _sftp_factory(settings: SSHSettings) -> Any:
    class LabSFTPServer(asyncssh.SFTPServer):
        """SFTP confined to the account's lab home (links leading out refused)."""

        def __init__(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
            user = chan.get_extra_info("username")
            account = settings.account(user)
            if account is None:  # pragma: no cover - authentication let it in
                raise asyncssh.SFTPPermissionDenied("no lab home")
            self._home = os.fsencode(os.path.realpath(account.home))
            self._room = settings.home_quota - _usage(account.home)
            super().__init__(chan, chroot=self._home)

        def write(self, file_obj: object, offset: int, data: bytes) -> Any:
            if len(data) > self._room:
                raise asyncssh.SFTPFailure(
                    f"the lab home quota of {settings.home_quota} bytes is reached"
                )
            self._room -= len(data)
            return super().write(file_obj, offset, data)

        def map_path(self, path: bytes) -> bytes:
            mapped = super().map_path(path)
            real = os.fsencode(os.path.realpath(mapped))
            if real != self._home and not real.startswith(self._home + b"/"):
                raise asyncssh.SFTPPermissionDenied(
                    f"path leads out of the lab home: {path.decode(errors='replace')}"
                )
            return mapped

        def symlink(self, oldpath: bytes, newpath: bytes) -> None:
            raise asyncssh.SFTPPermissionDenied("links are not allowed in the lab home")

        def link(self, oldpath: bytes, newpath: bytes) -> None:
            raise asyncssh.SFTPPermissionDenied("links are not allowed in the lab home")

        def exit(self) -> None:
            # asyncssh ends an SFTP session without an exit status; OpenSSH's scp (SFTP mode)
            # counts that as a failure, so report success as sshd's internal-sftp does.
            with contextlib.suppress(OSError, asyncssh.Error):
                self.channel.exit(0)

        def readlink(self, path: bytes) -> bytes:
            target = os.readlink(self.map_path(path))
            return posixpath.normpath(target)

    return LabSFTPServer


def _usage(home: Path) -> int:
    """Bytes of the regular files under ``home`` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(home):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _session(settings: SSHSettings) -> Any:
    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        user = process.get_extra_info("username")
        account = settings.account(user)
        if account is None:  # pragma: no cover - authentication let it in
            process.exit(1)
            return
        shell = MinimalShell(
            account.home,
            user,
            timeout=settings.command_timeout,
            term=process.term_type or "dumb",
        )

        async def out(text: str) -> None:
            process.stdout.write(text)
            await process.stdout.drain()

        async def err(text: str) -> None:
            process.stderr.write(text)
            await process.stderr.drain()

        try:
            if process.command is not None:
                status = await shell.run_line(process.command, out, err)
                process.exit(0 if status is None else status)
                return
            if process.subsystem:
                await err(f"shell: no subsystem {process.subsystem}\n")
                process.exit(1)
                return

            async def readline() -> str:
                while True:
                    try:
                        line = await asyncio.wait_for(
                            process.stdin.readline(), settings.idle_timeout
                        )
                    except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived):
                        continue
                    except TimeoutError:
                        await err(f"\nshell: idle for {settings.idle_timeout:g} s, closing\n")
                        return ""
                    if len(line) > MAX_LINE:
                        await err(f"shell: line longer than {MAX_LINE} characters\n")
                        continue
                    return line

            status = await shell.interact(readline, out, err)
            process.exit(status)
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, BrokenPipeError):
            pass
        except (asyncssh.SignalReceived, asyncssh.TerminalSizeChanged, asyncssh.BreakReceived):
            process.exit(130)
        except ConnectionError:
            pass

    return handle


class SSHListener:
    """A running lab SSH server: its listening ``socket`` and :meth:`aclose`."""

    def __init__(self, acceptor: asyncssh.SSHAcceptor, settings: SSHSettings) -> None:
        self.acceptor = acceptor
        self.settings = settings

    @property
    def socket(self) -> Any:
        """The listening socket."""
        return self.acceptor.sockets[0]

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.acceptor.get_port())

    async def aclose(self) -> None:
        """Stop listening and close every connection."""
        self.acceptor.close()
        await self.acceptor.wait_closed()
        connections = list(self.settings.connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)


async def open_ssh_server(host: str, port: int, settings: SSHSettings) -> SSHListener:
    """Start the lab SSH server on ``host``:``port``."""
    acceptor = await asyncssh.create_server(
        lambda: _LabSSHServer(settings),
        host,
        port,
        server_host_keys=[settings.host_key],
        encryption_algs=list(settings.encryption_algs),
        process_factory=_session(settings),
        sftp_factory=_sftp_factory(settings),
        allow_scp=True,
        encoding="utf-8",
        line_editor=True,
        line_history=0,
        max_line_length=MAX_LINE,
        login_timeout=settings.login_timeout,
        keepalive_interval=60,
        keepalive_count_max=3,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_pty=True,
        server_version="wirelab",
        config=None,
        tunnel=_CoalescingListener(),
    )
    return SSHListener(acceptor, settings)
