"""The lab Telnet server (chapter 16) on telnetlib3: a login prompt, then the minimal shell.

It greets with ``login:``, asks ``Password:``, answers ``Login incorrect`` or a prompt
ending in ``$`` (what the book's ``telnet_login.py`` waits for), and runs
:class:`wirelab.shell.MinimalShell` in the account's lab home. telnetlib3 negotiates the
options (it asks ``DO TTYPE`` and sends ``SB TTYPE SEND``); the terminal type the client
gives becomes the session's ``$TERM`` and is shown after login.

Everything crosses the wire in cleartext, the password included: that is the lesson.

Bad input: a failed login waits :attr:`TelnetSettings.failure_delay` times the peer's
failures (at most :attr:`TelnetSettings.max_failure_delay`) and is logged without the
password; three failures close the connection; the login must finish within
:attr:`TelnetSettings.login_timeout`; a session idle for :attr:`TelnetSettings.idle_timeout`
is closed; lines are at most :data:`~wirelab.shell.minimal.MAX_LINE` characters; at most
:attr:`TelnetSettings.max_connections` sessions at once (at the cap the oldest session not
logged in is closed to make room; only when all are logged in is the newcomer refused).

Why not on :class:`wirelab.net.server.ConnectionServer`: telnetlib3 owns its listener and
protocol (negotiation); the limits above stand in for the ConnectionServer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wirelab.shell.minimal import MAX_LINE, MinimalShell

__all__ = ["TelnetAccount", "TelnetListener", "TelnetSettings", "open_telnet_server"]

#: The most peer addresses whose failed logins are counted at once.
MAX_TRACKED_PEERS = 4096

log = logging.getLogger("wirelab.telnet.server")

#: What the server says first: the reader should know the wire is not private.
BANNER = "wirelab lab Telnet: cleartext, everything you type crosses the wire as it is.\r\n"


@dataclass(frozen=True)
class TelnetAccount:
    """A login: name, password and lab home."""

    user: str
    password: str
    home: Path


@dataclass
class TelnetSettings:
    """Accounts and limits of the lab Telnet server."""

    accounts: tuple[TelnetAccount, ...]
    failure_delay: float = 1.0
    max_failure_delay: float = 5.0
    max_attempts: int = 3
    login_timeout: float = 60.0
    idle_timeout: float = 600.0
    command_timeout: float = 30.0
    max_connections: int = 64
    hostname: str = "ftp.example.com"
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sessions: dict[Any, bool] = field(default_factory=dict)
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

    def account(self, user: str) -> TelnetAccount | None:
        """The account named ``user``, if any."""
        return next((a for a in self.accounts if a.user == user), None)


class _Closed(Exception):
    """The peer went away, or waited too long."""


async def _read_line(reader: Any, writer: Any, *, echo: bool, timeout: float) -> str:
    """Read one line (CR, LF, CR LF or CR NUL ends it), echoing when we agreed to."""
    buf: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise _Closed("timeout")
        try:
            char = await asyncio.wait_for(reader.read(1), left)
        except TimeoutError as exc:
            raise _Closed("timeout") from exc
        if not char:
            raise _Closed("eof")
        if isinstance(char, bytes):
            char = char.decode("latin-1")
        if char in ("\n", "\x00") and not buf:
            continue
        if char in ("\r", "\n"):
            if echo and writer.will_echo:
                writer.echo("\r\n")
            return "".join(buf)
        if char in ("\x7f", "\x08"):
            if buf:
                buf.pop()
                if echo and writer.will_echo:
                    writer.echo("\b \b")
            continue
        if len(buf) >= MAX_LINE:
            raise _Closed("line too long")
        buf.append(char)
        if echo and writer.will_echo:
            writer.echo(char)


def _shell(settings: TelnetSettings) -> Any:
    async def shell(reader: Any, writer: Any) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = str(peer_info[0]) if peer_info else "?"
        sessions = settings.sessions
        if len(sessions) >= settings.max_connections:
            waiting = [w for w, logged_in in sessions.items() if not logged_in]
            if not waiting:  # every session is a logged-in user: refuse the new one
                settings.warn_overload(f"telnet: {peer} refused: all sessions logged in")
                writer.write("too many sessions, try later\r\n")
                writer.close()
                return
            oldest = waiting[0]  # make room: close the oldest session not logged in
            sessions.pop(oldest, None)
            with contextlib.suppress(Exception):
                oldest.close()
            settings.warn_overload("telnet: at the session cap: closed the oldest not logged in")
        sessions[writer] = False
        try:
            await _session(settings, reader, writer, peer)
        except (_Closed, ConnectionError):
            pass
        finally:
            sessions.pop(writer, None)
            with contextlib.suppress(Exception):
                writer.close()

    return shell


async def _session(settings: TelnetSettings, reader: Any, writer: Any, peer: str) -> None:
    writer.write("\r\n" + BANNER)
    account = None
    for _ in range(settings.max_attempts):
        writer.write(f"{settings.hostname} login: ")
        user = await _read_line(reader, writer, echo=True, timeout=settings.login_timeout)
        writer.write("Password: ")
        password = await _read_line(reader, writer, echo=False, timeout=settings.login_timeout)
        writer.write("\r\n")
        found = settings.account(user.strip())
        if found is not None and hmac.compare_digest(found.password.encode(), password.encode()):
            account = found
            settings.sessions[writer] = True
            settings.failures.pop(peer, None)
            log.info("telnet: %s logged in as %s (in cleartext)", peer, found.user)
            break
        if len(settings.failures) >= MAX_TRACKED_PEERS and peer not in settings.failures:
            settings.failures.clear()  # bounded memory; the delays start again from one
        settings.failures[peer] += 1
        count = settings.failures[peer]
        delay = min(settings.failure_delay * count, settings.max_failure_delay)
        log.warning(
            "telnet: failed login for %r from %s (failure %d; password redacted; waiting %.1f s)",
            user[:64],
            peer,
            count,
            delay,
        )
        await asyncio.sleep(delay)
        writer.write("Login incorrect\r\n")
    if account is None:
        writer.write("Too many failures; closing.\r\n")
        return
    term = writer.get_extra_info("TERM") or "dumb"
    shell = MinimalShell(
        account.home,
        account.user,
        prompt=f"{account.user}@{settings.hostname}:~$ ",
        timeout=settings.command_timeout,
        term=str(term).lower(),
    )
    writer.write(f"Terminal type: {shell.term}. This shell has no special characters.\r\n")

    async def out(text: str) -> None:
        writer.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))
        await writer.drain()

    async def readline() -> str:
        try:
            return await _read_line(reader, writer, echo=True, timeout=settings.idle_timeout) + "\n"
        except _Closed as exc:
            if str(exc) == "timeout":
                await out(f"\nidle for {settings.idle_timeout:g} s, closing\n")
            return ""

    await shell.interact(readline, out, out)


class TelnetListener:
    """A running lab Telnet server: its listening ``socket`` and :meth:`aclose`."""

    def __init__(self, server: Any) -> None:
        self.server = server

    @property
    def socket(self) -> Any:
        """The listening socket."""
        return self.server.sockets[0]

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.socket.getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening and close every session."""
        self.server.close()  # telnetlib3 closes its clients too
        await self.server.wait_closed()


async def open_telnet_server(host: str, port: int, settings: TelnetSettings) -> TelnetListener:
    """Start the lab Telnet server on ``host``:``port``."""
    import telnetlib3

    server = await telnetlib3.create_server(
        host=host,
        port=port,
        shell=_shell(settings),
        encoding="utf8",
        encoding_errors="replace",
        connect_maxwait=0.5,
        timeout=int(max(settings.idle_timeout, settings.login_timeout)) + 5,  # a backstop
        compression=False,
        limit=65536,
    )
    return TelnetListener(server)
