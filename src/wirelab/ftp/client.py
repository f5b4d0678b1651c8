"""FTP and FTPS clients on ``ftplib``: the book's chapter 17 programs, made safe.

By default the client speaks the book's wire: plain FTP, passive mode, the commands the
book's scripts send. ``tls="explicit"`` adds ``AUTH TLS`` then ``PBSZ 0``/``PROT P`` (RFC
4217); ``tls="implicit"`` speaks TLS from the first byte. Both verify the server's
certificate with an explicit :class:`ssl.SSLContext` (the lab CA's for the lab); nothing
turns verification off.

What the book left out, added here:

* every wait has a timeout, every reply line a limit (ftplib's 8192 characters);
* downloads go to ``NAME.part`` and are renamed only when complete, so a cut transfer leaves
  a clearly partial file; ``resume=True`` continues it with ``REST`` (binary mode);
* an existing local file (or remote file, for uploads) is never overwritten without
  ``force``; empty files transfer (the book's progress line divides by zero on them);
* the low-level download takes the expected size from the ``150`` reply, as the book's
  ``advbinarydl.py`` does (a resume asks ``SIZE`` instead);
* ASCII downloads write the platform's line ends once (the book doubled CRs on Windows);
* the recursive walk (``mirror``) reads MLSD facts where the server has them, else parses
  LIST, else probes with CWD as the book does; it never follows a symbolic link to a
  directory, stops at a depth limit, and skips a directory it has seen (MLSD ``unique``).
"""

from __future__ import annotations

import contextlib
import ftplib
import os
import posixpath
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from wirelab.errors import (
    Broken,
    ConfigError,
    RemoteProtocolError,
    Timeout,
    WirelabError,
)
from wirelab.net.addresses import lab_address
from wirelab.net.streams import map_os_error
from wirelab.net.tlsctx import wrap_tls_error

__all__ = [
    "BLOCKSIZE",
    "FTPReplyError",
    "FTPTarget",
    "LabFTP",
    "MirrorReport",
    "Progress",
    "RemoteEntry",
    "TLSMode",
    "TransferResult",
    "download",
    "download_ascii",
    "list_entries",
    "list_long",
    "list_names",
    "mirror_down",
    "mirror_up",
    "open_session",
    "parse_list_line",
    "upload",
    "welcome",
]

TLSMode = Literal["none", "explicit", "implicit"]

#: Bytes per read and per write of the low-level transfers (the book read 2 KiB, sent 8 KiB).
BLOCKSIZE = 64 * 1024

#: How deep ``mirror`` goes before it stops (a symlink loop the listing does not show).
MAX_DEPTH = 32

#: Called with (bytes so far, expected total or None) during a transfer.
Progress = Callable[[int, int | None], None]


class FTPReplyError(RemoteProtocolError):
    """The server answered a command with an error reply (4xx, 5xx); ``code`` is its number."""


@dataclass(frozen=True)
class FTPTarget:
    """Where and how to log in.

    Attributes:
        host: a name or address (playground names resolve to the running lab).
        port: the control port.
        user: ``anonymous`` or an account.
        password: the account's password (anonymous: an address-like string, as ftplib sends).
        tls: ``none`` (the book's plain FTP), ``explicit`` (AUTH TLS) or ``implicit``.
        context: the verifying context for TLS (required unless ``tls`` is ``none``).
        timeout: seconds for every connect, reply and data read.
    """

    host: str
    port: int = 21
    user: str = "anonymous"
    password: str = "anonymous@"  # noqa: S105 - the anonymous login convention
    tls: TLSMode = "none"
    context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.tls not in ("none", "explicit", "implicit"):
            raise ConfigError(f"unknown TLS mode {self.tls!r} (none, explicit or implicit)")
        if self.tls != "none" and self.context is None:
            raise ConfigError("FTPS needs an SSL context (the lab's: LabState.ssl_context())")
        if not self.timeout > 0:
            raise ConfigError(f"the timeout must be above zero, not {self.timeout}")

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class LabFTP(ftplib.FTP_TLS):
    """``ftplib.FTP_TLS`` that can also do implicit TLS and plain FTP, and that resolves the
    playground's names to the running lab while it verifies the certificate for the name."""

    def __init__(self, target: FTPTarget) -> None:
        context = target.context or ssl.create_default_context()
        super().__init__(context=context, timeout=target.timeout)
        self.target = target

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: tuple[str, int] | None = None,
    ) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        address = lab_address(host) or host
        self.sock = socket.create_connection((address, port), self.timeout)
        self.af = self.sock.family
        if self.target.tls == "implicit":
            self.sock = self.context.wrap_socket(self.sock, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


@contextlib.contextmanager
def seam(target: FTPTarget, what: str) -> Iterator[None]:
    """Map ftplib's, ssl's and the socket's errors to wirelab errors (one line each)."""
    try:
        yield
    except WirelabError:
        raise
    except ftplib.error_perm as exc:
        text = str(exc)
        raise FTPReplyError(f"{what}: {text}", code=_code(text)) from exc
    except ftplib.error_temp as exc:
        text = str(exc)
        raise FTPReplyError(f"{what}: {text}", code=_code(text)) from exc
    except (ftplib.error_reply, ftplib.error_proto) as exc:
        raise RemoteProtocolError(f"{what}: unexpected reply {exc}") from exc
    except ftplib.Error as exc:  # ftplib's line limit and the like
        raise RemoteProtocolError(f"{what}: {exc}") from exc
    except EOFError as exc:
        raise Broken(f"{what}: {target.where} closed the connection") from exc
    except ssl.SSLCertVerificationError as exc:
        raise wrap_tls_error(exc, target.host) from exc
    except ssl.SSLError as exc:
        if isinstance(exc, ssl.SSLEOFError):
            raise Broken(f"{what}: {target.where} closed the TLS connection") from exc
        raise wrap_tls_error(exc, target.host) from exc
    except TimeoutError as exc:
        raise Timeout(f"{what}: no answer from {target.where} in {target.timeout:g} s") from exc
    except OSError as exc:
        raise map_os_error(exc, f"{what} ({target.where})") from exc


def _code(text: str) -> int | None:
    head = text[:3]
    return int(head) if head.isdigit() else None


@contextlib.contextmanager
def open_session(target: FTPTarget) -> Iterator[LabFTP]:
    """Connect, log in (after ``AUTH TLS`` for explicit FTPS), protect the data channel for
    FTPS, yield the session, then ``QUIT`` (or close, if the connection is already broken).

    Raises:
        ConnectError, Timeout, TLSError, Broken: the connection.
        FTPReplyError: the login was refused (530 ...).
    """
    ftp = LabFTP(target)
    try:
        with seam(target, f"connecting to {target.where}"):
            ftp.connect(target.host, target.port)
        with seam(target, f"logging in to {target.where} as {target.user}"):
            ftp.login(target.user, target.password, secure=target.tls != "none")
            if target.tls != "none":
                ftp.prot_p()
        yield ftp
        with contextlib.suppress(OSError, EOFError, ftplib.Error, ssl.SSLError):
            ftp.quit()
    finally:
        ftp.close()


def welcome(target: FTPTarget) -> tuple[str, str]:
    """The book's ``connect.py`` (F99): the server's greeting and the working directory."""
    with open_session(target) as ftp, seam(target, "PWD"):
        return ftp.getwelcome(), ftp.pwd()


def list_names(ftp: LabFTP, path: str = "") -> list[str]:
    """NLST (the book's ``nlst.py``): the names in ``path`` (the working directory if empty)."""
    with seam(ftp.target, f"NLST {path}".strip()):
        return ftp.nlst(*([path] if path else []))


def list_long(ftp: LabFTP, path: str = "") -> list[str]:
    """LIST (the book's ``dir.py``): the server's long-format lines, as they come."""
    lines: list[str] = []
    with seam(ftp.target, f"LIST {path}".strip()):
        ftp.retrlines(f"LIST {path}".strip(), lines.append)
    return lines


@dataclass(frozen=True)
class RemoteEntry:
    """One name in a remote directory: ``kind`` is ``file``, ``dir``, ``link`` or ``unknown``."""

    name: str
    kind: str
    size: int | None = None
    unique: str | None = None


def parse_list_line(line: str) -> RemoteEntry | None:
    """Read one Unix-style LIST line (``drwxr-xr-x 2 owner group 4096 Mar 14 1994 name``).

    Returns ``None`` for lines that are not entries (``total 12``) or not in that format.
    """
    parts = line.split(None, 8)
    if len(parts) < 9 or not parts[0] or parts[0][0] not in "-dl":
        return None
    kind = {"-": "file", "d": "dir", "l": "link"}[parts[0][0]]
    name = parts[8]
    if kind == "link" and " -> " in name:
        name = name.split(" -> ", 1)[0]
    size = int(parts[4]) if parts[4].isdigit() else None
    if name in (".", ".."):
        return None
    return RemoteEntry(name, kind, size)


def list_entries(ftp: LabFTP, path: str) -> list[RemoteEntry]:
    """The entries of ``path``: MLSD facts if the server has them, else LIST lines, else NLST
    names whose kind a CWD probe decides (the book's ``recursedl.py`` method)."""
    with seam(ftp.target, f"MLSD {path}"):
        try:
            found = []
            for name, facts in ftp.mlsd(path, facts=["type", "size", "unique"]):
                kind = facts.get("type", "").lower()
                if kind in ("cdir", "pdir") or name in (".", ".."):
                    continue
                size = facts.get("size")
                found.append(
                    RemoteEntry(
                        name,
                        "dir" if kind == "dir" else "file" if kind == "file" else "link",
                        int(size) if size and size.isdigit() else None,
                        facts.get("unique"),
                    )
                )
            return found
        except ftplib.error_perm as exc:
            if _code(str(exc)) not in (500, 501, 502, 504):  # MLSD is there: a real refusal
                raise
    entries = [entry for line in list_long(ftp, path) if (entry := parse_list_line(line))]
    if entries:
        return entries
    names = [posixpath.basename(n.rstrip("/")) for n in list_names(ftp, path)]
    probed = []
    here = ftp.pwd()
    for name in names:
        try:
            ftp.cwd(posixpath.join(path, name))
            probed.append(RemoteEntry(name, "dir"))
        except ftplib.error_perm:
            probed.append(RemoteEntry(name, "file"))
        finally:
            ftp.cwd(here)
    return probed


@dataclass
class TransferResult:
    """What a transfer did: where, how many bytes, how many were expected, from where."""

    remote: str
    local: str
    bytes: int
    expected: int | None = None
    resumed_from: int = 0
    mode: str = "binary"

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "local": self.local,
            "bytes": self.bytes,
            "expected": self.expected,
            "resumed_from": self.resumed_from,
            "mode": self.mode,
        }


def part_path(local: Path) -> Path:
    """Where a download is written until it is complete: ``NAME.part``."""
    return local.with_name(local.name + ".part")


def _refuse_existing(local: Path, force: bool) -> None:
    if local.exists() and not force:
        raise ConfigError(f"refusing to overwrite {local} (use --force)")
    if local.is_dir():
        raise ConfigError(f"{local} is a directory")


def download(
    ftp: LabFTP,
    remote: str,
    local: Path,
    *,
    force: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
    blocksize: int = BLOCKSIZE,
) -> TransferResult:
    """Binary download the low-level way (the book's ``advbinarydl.py``, F102/F103).

    ``TYPE I``, then ``RETR`` through ``ntransfercmd``, which gives the data socket and the
    size from the ``150`` reply; the bytes go to ``NAME.part``, which becomes ``NAME`` once
    the server's ``226`` confirms the transfer and the byte count matches.

    Args:
        resume: continue an existing ``NAME.part`` from its size with ``REST``.
        force: replace an existing ``NAME``.
        progress: called with (bytes so far, expected total or None) after every block.

    Raises:
        ConfigError: ``NAME`` exists (without ``force``).
        Broken: the transfer ended short of the expected size (``NAME.part`` stays).
        FTPReplyError: the server refused (550 no such file ...).
    """
    _refuse_existing(local, force)
    partial = part_path(local)
    offset = partial.stat().st_size if resume and partial.exists() else 0
    target = ftp.target
    with seam(target, f"RETR {remote}"):
        ftp.voidcmd("TYPE I")
        total: int | None = None
        if offset:  # only a resume asks SIZE; a fresh download sends the book's commands
            with contextlib.suppress(ftplib.error_perm):
                total = ftp.size(remote)
        if offset and total is not None and offset > total:
            raise ConfigError(f"{partial} is longer than {remote} ({offset} > {total} bytes)")
        if offset and offset == total:
            partial.replace(local)
            return TransferResult(remote, str(local), 0, total, offset)
        datasock, announced = ftp.ntransfercmd(f"RETR {remote}", offset or None)
        # after REST servers differ on what the 150 size means: a resume counts against SIZE
        expected = announced if announced is not None and offset == 0 else total
        received = offset
        with datasock, partial.open("ab" if offset else "wb") as out:
            datasock.settimeout(target.timeout)
            if progress:
                progress(received, expected)
            while True:
                block = datasock.recv(blocksize)
                if not block:
                    break
                out.write(block)
                received += len(block)
                if progress:
                    progress(received, expected)
            if isinstance(datasock, ssl.SSLSocket):
                with contextlib.suppress(OSError, ValueError):
                    datasock.unwrap()
        ftp.voidresp()
    if expected is not None and received != expected:
        raise Broken(
            f"RETR {remote}: got {received} of {expected} bytes; {partial} is partial "
            "(get --resume continues it)"
        )
    partial.replace(local)
    return TransferResult(remote, str(local), received - offset, expected, offset)


def download_ascii(ftp: LabFTP, remote: str, local: Path, *, force: bool = False) -> TransferResult:
    """ASCII-mode download (the book's ``asciidl.py``, F101): ``TYPE A``, lines without their
    CR LF, written with this platform's line end once (text mode adds it)."""
    _refuse_existing(local, force)
    partial = part_path(local)
    count = 0
    with seam(ftp.target, f"RETR {remote}"), partial.open("w", encoding="utf-8") as out:

        def line(text: str) -> None:
            nonlocal count
            out.write(text + "\n")
            count += len(text) + 1

        ftp.retrlines(f"RETR {remote}", line)
    partial.replace(local)
    return TransferResult(remote, str(local), count, None, 0, "ascii")


def _remote_exists(ftp: LabFTP, remote: str) -> bool:
    try:
        ftp.voidcmd("TYPE I")
        ftp.size(remote)
        return True
    except ftplib.error_perm:
        return False


def upload(
    ftp: LabFTP,
    local: Path,
    remote: str | None = None,
    *,
    force: bool = False,
    chunked: bool = True,
    progress: Progress | None = None,
    blocksize: int = BLOCKSIZE,
) -> TransferResult:
    """Upload ``local`` as ``remote`` (default: its name in the working directory).

    ``chunked`` (the book's ``advbinaryul.py``, F105) sends blocks on the data socket from
    ``ntransfercmd`` and reports progress; otherwise ``storbinary`` (``binaryul.py``, F104).
    An empty file is a valid upload.

    Raises:
        ConfigError: the local file is missing, or the remote one exists (without ``force``).
    """
    if not local.is_file():
        raise ConfigError(f"{local} is not a file")
    name = remote or local.name
    target = ftp.target
    size = local.stat().st_size
    sent = 0
    with seam(target, f"STOR {name}"):
        if not force and _remote_exists(ftp, name):
            raise ConfigError(f"refusing to overwrite {name} on {target.where} (use --force)")
        ftp.voidcmd("TYPE I")
        with local.open("rb") as source:
            if not chunked:
                ftp.storbinary(f"STOR {name}", source, blocksize)
                sent = size
            else:
                datasock, _ = ftp.ntransfercmd(f"STOR {name}")
                with datasock:
                    datasock.settimeout(target.timeout)
                    if progress:
                        progress(0, size)
                    while block := source.read(blocksize):
                        datasock.sendall(block)
                        sent += len(block)
                        if progress:
                            progress(sent, size)
                    if isinstance(datasock, ssl.SSLSocket):
                        with contextlib.suppress(OSError, ValueError):
                            datasock.unwrap()
                ftp.voidresp()
    return TransferResult(name, str(local), sent, size)


@dataclass
class MirrorReport:
    """What a mirror did."""

    files: int = 0
    bytes: int = 0
    directories: int = 0
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "directories": self.directories,
            "skipped": self.skipped,
        }


def mirror_down(
    ftp: LabFTP,
    remote_dir: str,
    local_dir: Path,
    *,
    force: bool = False,
    max_depth: int = MAX_DEPTH,
) -> MirrorReport:
    """Copy the remote tree under ``remote_dir`` into ``local_dir`` (F106, made to download).

    Symbolic links are not followed (listed in ``skipped``); a directory whose MLSD
    ``unique`` fact was seen before is skipped; nothing deeper than ``max_depth``.
    """
    report = MirrorReport()
    seen: set[str] = set()

    def walk(remote: str, local: Path, depth: int) -> None:
        if depth > max_depth:
            report.skipped.append(f"{remote} (deeper than {max_depth})")
            return
        local.mkdir(parents=True, exist_ok=True)
        report.directories += 1
        for entry in sorted(list_entries(ftp, remote), key=lambda e: e.name):
            if "/" in entry.name or entry.name in ("", ".", ".."):
                report.skipped.append(f"{remote}/{entry.name} (unsafe name)")
                continue
            path = posixpath.join(remote, entry.name)
            if entry.kind == "dir":
                if entry.unique is not None:
                    if entry.unique in seen:
                        report.skipped.append(f"{path} (seen before: a loop)")
                        continue
                    seen.add(entry.unique)
                walk(path, local / entry.name, depth + 1)
            elif entry.kind == "file":
                result = download(ftp, path, local / entry.name, force=force)
                report.files += 1
                report.bytes += result.bytes
            else:
                report.skipped.append(f"{path} (symbolic link)")

    walk(remote_dir.rstrip("/") or "/", local_dir, 0)
    return report


def mirror_up(
    ftp: LabFTP,
    local_dir: Path,
    remote_dir: str,
    *,
    force: bool = False,
    max_depth: int = MAX_DEPTH,
) -> MirrorReport:
    """Copy the local tree under ``local_dir`` to ``remote_dir`` (created as needed).

    Symbolic links are not followed; only regular files and directories are sent.
    """
    if not local_dir.is_dir():
        raise ConfigError(f"{local_dir} is not a directory")
    report = MirrorReport()
    target = ftp.target

    def ensure(remote: str) -> None:
        with seam(target, f"MKD {remote}"):
            try:
                ftp.mkd(remote)
            except ftplib.error_perm:
                ftp.cwd(remote)  # it exists (else this raises the real refusal)

    def walk(local: Path, remote: str, depth: int) -> None:
        if depth > max_depth:
            report.skipped.append(f"{local} (deeper than {max_depth})")
            return
        ensure(remote)
        report.directories += 1
        for child in sorted(local.iterdir()):
            mode = child.lstat().st_mode
            path = posixpath.join(remote, child.name)
            if stat.S_ISLNK(mode):
                report.skipped.append(f"{child} (symbolic link)")
            elif stat.S_ISDIR(mode):
                walk(child, path, depth + 1)
            elif stat.S_ISREG(mode):
                result = upload(ftp, child, path, force=force)
                report.files += 1
                report.bytes += result.bytes
            else:
                report.skipped.append(f"{child} (not a regular file)")

    walk(local_dir, remote_dir.rstrip("/") or "/", 0)
    return report


def default_download_name(remote: str) -> Path:
    """The local name of a download: the remote basename, in the working directory (never
    the remote's absolute path, the book's SFTP mistake)."""
    name = posixpath.basename(remote.rstrip("/"))
    if not name or name in (".", ".."):
        raise ConfigError(f"{remote!r} does not name a file")
    return Path(os.curdir) / name
