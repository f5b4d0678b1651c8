"""The lab's FTP host (chapter 17): ``ftp.example.com``, standing in for the book's dead hosts.

Endpoint ``ftp`` (10021, the book's 21 shifted) speaks plain FTP as the book's scripts do and
offers explicit FTPS (``AUTH TLS``, ``PROT P``) with a lab-CA certificate; endpoint ``ftps``
(10990) is implicit FTPS. Both serve the same files: anonymous users read the seeded tree
(:mod:`wirelab.ftp.seed`: the book's ``/pub/linux/kernel`` and ``/pub/academic/astronomy``
paths) and cannot write; each lab account (``brandon``/``abc123``) logs in to its own home
under the lab directory, where it may upload. Passive data ports come from
:data:`wirelab.config.FTP_PASSIVE_PORTS` (any free port in tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wirelab.config import FTP_PASSIVE_PORTS
from wirelab.lab.service import DeclaredService, Endpoint, LabContext

if TYPE_CHECKING:
    from wirelab.ftp.server import FTPSettings

__all__ = ["FTP_HOSTNAMES", "SERVICES", "FTPService", "lab_ftp_settings"]

#: The names the lab FTP certificate carries.
FTP_HOSTNAMES = ("ftp.example.com", "localhost")


def lab_ftp_settings(lab: LabContext, *, implicit_tls: bool = False) -> FTPSettings:
    """The lab FTP server's settings: seeded anonymous tree, account homes, the lab CA cert."""
    from wirelab.config import private_dir
    from wirelab.ftp.seed import build_public_tree
    from wirelab.ftp.server import FTPAccount, FTPSettings

    base = private_dir(lab.state_dir / "ftp")
    public = build_public_tree(base / "anonymous")
    accounts = []
    for account in lab.accounts:
        home = base / "home" / account.user
        home.mkdir(parents=True, exist_ok=True)
        accounts.append(FTPAccount(account.user, account.password, home))
    cert, key = lab.ca.server_cert_for(list(FTP_HOSTNAMES), lab.state_dir / "ca")
    return FTPSettings(
        anonymous_root=public,
        accounts=tuple(accounts),
        cert_file=cert,
        key_file=key,
        implicit_tls=implicit_tls,
        passive_ports=None if lab.ephemeral else FTP_PASSIVE_PORTS,
    )


def _opener(lab: LabContext, *, implicit_tls: bool) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        from wirelab.ftp.server import open_ftp_server

        settings = await asyncio.to_thread(lab_ftp_settings, lab, implicit_tls=implicit_tls)
        name = "wirelab-lab-ftps" if implicit_tls else "wirelab-lab-ftp"
        return await open_ftp_server(host, port, settings, thread_name=name)

    return open_endpoint


class FTPService(DeclaredService):
    """pyftpdlib in a thread per endpoint: FTP with explicit FTPS, and implicit FTPS."""

    name = "ftp"
    host = "ftp.example.com"
    chapter = 17
    description = "FTP and FTPS host: the book's anonymous trees, uploads for lab accounts (ch. 17)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (
            Endpoint("ftp", _opener(lab, implicit_tls=False)),
            Endpoint("ftps", _opener(lab, implicit_tls=True), tls=True),
        )


SERVICES = (FTPService(),)


def lab_data_dir(state_dir: Path) -> Path:
    """Where a running lab keeps the FTP trees (``anonymous/`` and ``home/USER``)."""
    return state_dir / "ftp"
