"""SSH and SFTP clients (chapter 16) on asyncssh, with the host key pinned.

The book's scripts accept any host key (``AllowAnythingPolicy``): a man in the middle reads
everything. These clients check the server's key against a ``known_hosts`` file (the running
lab's pin by default, else ``~/.ssh/known_hosts``) and refuse an unknown or changed key with
its fingerprint shown. Each book program has its function here:

* :func:`shell_transcript` (F95, ``ssh_simple.py``): types lines into a PTY shell and returns
  the raw transcript, prompts and echoes included;
* :func:`run_commands` (F96, ``ssh_commands.py``): one channel per command, with stdout,
  stderr and exit status (the book keeps only stdout);
* :func:`run_concurrently` (F97, ``ssh_threads.py``): several channels over one connection,
  their lines in the order they arrive (tasks, not threads);
* :func:`sftp_get` / :func:`sftp_put` / :func:`sftp_list` (F98, ``sftp_get.py``): transfers
  with a progress callback that copes with empty files, and ``resume`` of a cut transfer.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from wirelab.errors import (
    ConfigError,
    ConnectError,
    ConnectionRefused,
    ProtocolError,
    RemoteProtocolError,
    Timeout,
    TransportError,
    WirelabError,
)
from wirelab.net.addresses import lab_address

__all__ = [
    "AuthenticationFailed",
    "CommandResult",
    "HostKeyRefused",
    "SSHTarget",
    "connect",
    "host_key_fingerprint",
    "run_commands",
    "run_concurrently",
    "sftp_get",
    "sftp_list",
    "sftp_put",
    "shell_transcript",
]

#: What the book's ssh_simple.py types into the shell.
BOOK_SHELL_LINES = ("echo Hello, world", "exit")
#: What the book's ssh_commands.py runs, one channel each.
BOOK_COMMANDS = ('echo "Hello, world!"', "uname", "uptime")
#: F97 without a shell's ``;``: two channels whose lines interleave (One A Two Three B C,
#: at 0.6 1.0 1.2 1.8 2.0 3.0 s: at least 0.2 s apart, so the order holds on a busy machine).
CONCURRENT_COMMANDS = ("tick 0.6 One Two Three", "tick 1.0 A B C")

Progress = Callable[[str, int, int], None]

#: The most characters kept from one command's stdout (and from its stderr).
MAX_OUTPUT = 8 << 20


class HostKeyRefused(TransportError):
    """The server's host key is not the one pinned for it (or none is pinned)."""


class AuthenticationFailed(WirelabError):
    """The server refused every credential offered."""


@dataclass(frozen=True)
class SSHTarget:
    """Where and how to log in.

    Attributes:
        host: the server's name or address (lab names resolve to the lab).
        port: its port.
        user: the account.
        password: a password to offer (or None).
        client_keys: private key files to offer.
        known_hosts: the file the host key must be pinned in.
        timeout: seconds for the connection and login, and for each wait.
    """

    host: str
    port: int
    user: str
    password: str | None = None
    client_keys: tuple[Path, ...] = ()
    known_hosts: Path | None = None
    timeout: float = 10.0


@dataclass
class CommandResult:
    """One command's channel: what it printed and how it ended."""

    command: str
    stdout: str
    stderr: str
    exit_status: int | None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {
            "command": self.command,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_status": self.exit_status,
            "seconds": round(self.seconds, 3),
        }


async def host_key_fingerprint(host: str, port: int, timeout: float = 10.0) -> str:
    """Fetch the server's host key (no login) and return its SHA256 fingerprint."""
    address = lab_address(host) or host
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(address, port), timeout)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise ConnectError(f"cannot fetch the host key of {host}:{port}: {exc}") from exc
    if key is None:
        raise ProtocolError(f"{host}:{port} presented no host key")
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


@asynccontextmanager
async def connect(target: SSHTarget) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Open a verified, authenticated SSH connection (closed on exit).

    Raises:
        HostKeyRefused: the host key is not pinned in ``target.known_hosts`` (fingerprint shown).
        AuthenticationFailed: no credential was accepted.
        ConnectError / ConnectionRefused / Timeout: the network failed.
    """
    if target.known_hosts is None:
        raise ConfigError("no known_hosts file to check the host key against")
    if not target.known_hosts.exists():
        raise ConfigError(f"known_hosts file {target.known_hosts} does not exist")
    address = lab_address(target.host) or target.host
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                address,
                target.port,
                username=target.user,
                password=target.password,
                client_keys=[str(k) for k in target.client_keys] or None,
                known_hosts=str(target.known_hosts),
                agent_path=None,
                config=None,
                preferred_auth="publickey,password" if target.password else "publickey",
                connect_timeout=target.timeout,
                login_timeout=target.timeout,
            ),
            target.timeout * 2,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        try:
            seen = await host_key_fingerprint(target.host, target.port, target.timeout)
        except WirelabError:
            seen = "unknown"
        raise HostKeyRefused(
            f"host key of {target.host}:{target.port} is not pinned in {target.known_hosts} "
            f"(server presents {seen}); refusing to log in"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthenticationFailed(
            f"{target.user}@{target.host}:{target.port} refused every credential offered"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(f"{target.host}:{target.port} refused the connection") from exc
    except TimeoutError as exc:
        raise Timeout(f"{target.host}:{target.port}: no login within the timeout") from exc
    except (OSError, asyncssh.Error) as exc:
        raise ConnectError(f"ssh to {target.host}:{target.port} failed: {exc}") from exc
    try:
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


async def run_commands(
    conn: asyncssh.SSHClientConnection, commands: Sequence[str], timeout: float = 30.0
) -> list[CommandResult]:
    """Run each command on its own channel, one after another (F96)."""
    results = []
    for command in commands:
        start = time.monotonic()
        try:
            results.append(await asyncio.wait_for(_one_command(conn, command), timeout))
        except TimeoutError as exc:
            raise Timeout(f"{command!r} did not finish within {timeout:g} s") from exc
        except asyncssh.Error as exc:
            raise ConnectError(f"channel for {command!r} failed: {exc}") from exc
        results[-1].seconds = time.monotonic() - start
    return results


async def _one_command(conn: asyncssh.SSHClientConnection, command: str) -> CommandResult:
    """Run ``command`` on a channel, keeping at most :data:`MAX_OUTPUT` of each stream."""
    async with conn.create_process(command, stdin=asyncssh.DEVNULL) as process:

        async def bounded(stream: asyncssh.SSHReader[str], name: str) -> str:
            kept: list[str] = []
            size = 0
            while chunk := await stream.read(65536):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    process.close()
                    raise RemoteProtocolError(
                        f"{command!r} wrote more than {MAX_OUTPUT} characters to {name}"
                    )
                kept.append(chunk)
            return "".join(kept)

        out, err = await asyncio.gather(
            bounded(process.stdout, "stdout"), bounded(process.stderr, "stderr")
        )
        done = await process.wait(check=False)
    return CommandResult(command, out, err, done.exit_status)


async def run_concurrently(
    conn: asyncssh.SSHClientConnection, commands: Sequence[str], timeout: float = 30.0
) -> list[tuple[int, str, float]]:
    """Start every command at once, each on its channel; return lines as they arrived (F97).

    Returns:
        ``(index of the command, line, seconds since the start)`` in arrival order.
    """
    start = time.monotonic()
    arrived: list[tuple[int, str, float]] = []
    size = [0]

    async def one(index: int, command: str) -> None:
        async with conn.create_process(command) as process:
            async for line in process.stdout:
                if not line:  # end of the channel's output
                    break
                size[0] += len(line)
                if size[0] > MAX_OUTPUT:
                    raise RemoteProtocolError(
                        f"the channels wrote more than {MAX_OUTPUT} characters"
                    )
                arrived.append((index, line.rstrip("\n"), time.monotonic() - start))
            await process.wait()

    try:
        await asyncio.wait_for(
            asyncio.gather(*(one(i, c) for i, c in enumerate(commands))), timeout
        )
    except TimeoutError as exc:
        raise Timeout(f"the channels did not finish within {timeout:g} s") from exc
    except asyncssh.Error as exc:
        raise ConnectError(f"a channel failed: {exc}") from exc
    return arrived


async def shell_transcript(
    conn: asyncssh.SSHClientConnection,
    lines: Sequence[str] = BOOK_SHELL_LINES,
    timeout: float = 10.0,
    term: str = "vt100",
) -> str:
    """Open a PTY shell, type ``lines`` (each ended by CR, as the book does), read to EOF (F95)."""
    try:
        async with conn.create_process(term_type=term, term_size=(80, 24)) as process:
            for line in lines:
                process.stdin.write(line + "\r")

            async def read_all() -> str:
                kept: list[str] = []
                size = 0
                while chunk := await process.stdout.read(65536):
                    size += len(chunk)
                    if size > MAX_OUTPUT:
                        raise RemoteProtocolError(
                            f"the shell wrote more than {MAX_OUTPUT} characters"
                        )
                    kept.append(chunk)
                return "".join(kept)

            output = await asyncio.wait_for(read_all(), timeout)
    except TimeoutError as exc:
        raise Timeout(f"the shell did not end within {timeout:g} s") from exc
    except asyncssh.Error as exc:
        raise ConnectError(f"the shell channel failed: {exc}") from exc
    return _text(output)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# -- SFTP -------------------------------------------------------------------------------------

CHUNK = 256 * 1024


def _sftp_error(exc: Exception, what: str) -> WirelabError:
    if isinstance(exc, asyncssh.SFTPNoSuchFile):
        return ConfigError(f"{what}: no such file on the server")
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return ConfigError(f"{what}: permission denied: {exc.reason}")
    if isinstance(exc, asyncssh.SFTPError):
        return ProtocolError(f"{what}: {exc.reason}")
    return ConnectError(f"{what}: {exc}")


async def sftp_list(conn: asyncssh.SSHClientConnection, path: str = ".") -> list[dict[str, Any]]:
    """List a remote directory: name, size, whether it is a directory."""
    try:
        async with conn.start_sftp_client() as sftp:
            names = await sftp.readdir(path)
    except (asyncssh.Error, OSError) as exc:
        raise _sftp_error(exc, f"ls {path}") from exc
    rows = []
    for entry in names:
        name = _text(entry.filename)
        if name in (".", ".."):
            continue
        rows.append(
            {
                "name": name,
                "size": entry.attrs.size or 0,
                "dir": bool(entry.attrs.permissions and (entry.attrs.permissions & 0o40000)),
            }
        )
    return sorted(rows, key=lambda r: str(r["name"]))


async def sftp_get(
    conn: asyncssh.SSHClientConnection,
    remote: str,
    local: Path,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> int:
    """Download ``remote`` to ``local``, streamed; return the bytes written this time.

    With ``resume``, a shorter ``local`` is completed from its length on (a longer one is an
    error). An empty file reports 0 of 0 once, never a division by zero.
    """
    try:
        async with conn.start_sftp_client() as sftp:
            total = int((await sftp.stat(remote)).size or 0)
            offset = local.stat().st_size if resume and local.exists() else 0
            if offset > total:
                raise ConfigError(f"{local} is longer ({offset}) than {remote} ({total})")
            mode = "ab" if offset else "wb"
            written = 0
            with local.open(mode) as out:
                if progress:
                    progress(remote, offset, total)
                async with sftp.open(remote, "rb") as handle:
                    await handle.seek(offset)
                    while True:
                        chunk = await handle.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        written += len(chunk)
                        if progress:
                            progress(remote, offset + written, total)
    except WirelabError:
        raise
    except (asyncssh.Error, OSError) as exc:
        raise _sftp_error(exc, f"get {remote}") from exc
    return written


async def sftp_put(
    conn: asyncssh.SSHClientConnection,
    local: Path,
    remote: str,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> int:
    """Upload ``local`` to ``remote`` (streamed; ``resume`` appends from the remote length)."""
    try:
        total = local.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {local}: {exc.strerror or exc}") from exc
    try:
        async with conn.start_sftp_client() as sftp:
            offset = 0
            if resume and await sftp.exists(remote):
                offset = int((await sftp.stat(remote)).size or 0)
                if offset > total:
                    raise ConfigError(f"{remote} is longer ({offset}) than {local} ({total})")
            written = 0
            if progress:
                progress(str(local), offset, total)
            with local.open("rb") as source:
                source.seek(offset)
                async with sftp.open(remote, "ab" if offset else "wb") as handle:
                    while chunk := source.read(CHUNK):
                        await handle.write(chunk)
                        written += len(chunk)
                        if progress:
                            progress(str(local), offset + written, total)
    except WirelabError:
        raise
    except (asyncssh.Error, OSError) as exc:
        raise _sftp_error(exc, f"put {remote}") from exc
    return written


def default_known_hosts() -> Path:
    """The user's own ``~/.ssh/known_hosts``."""
    return Path(os.path.expanduser("~/.ssh/known_hosts"))
