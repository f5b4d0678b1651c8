"""The lab's Telnet host (chapter 16): ``ftp.example.com``, as in the book's playground.

Endpoint ``telnet`` (10023, the book's 23 shifted): a login prompt for the lab accounts
(``brandon``/``abc123``), then the minimal shell in the account's lab home (shared with the
SSH host). Cleartext, as Telnet always is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

if TYPE_CHECKING:
    from wirelab.telnet.server import TelnetSettings

__all__ = ["SERVICES", "TelnetService", "lab_telnet_settings"]


def lab_telnet_settings(lab: LabContext) -> TelnetSettings:
    """The lab Telnet server's settings: the lab accounts and their homes."""
    from wirelab.shell.minimal import environment_home
    from wirelab.ssh.service import lab_homes
    from wirelab.telnet.server import TelnetAccount, TelnetSettings

    base = lab_homes(lab.state_dir)
    accounts = tuple(
        TelnetAccount(a.user, a.password, environment_home(base, a.user)) for a in lab.accounts
    )
    return TelnetSettings(accounts=accounts)


def _opener(lab: LabContext) -> Any:
    async def open_endpoint(host: str, port: int) -> Any:
        from wirelab.telnet.server import open_telnet_server

        settings = await asyncio.to_thread(lab_telnet_settings, lab)
        return await open_telnet_server(host, port, settings)

    return open_endpoint


class TelnetService(DeclaredService):
    """telnetlib3: a login prompt, then the minimal shell (cleartext, on purpose)."""

    name = "telnet"
    host = "ftp.example.com"
    chapter = 16
    description = "Telnet host: login prompt, minimal shell, cleartext shown (ch. 16)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        return (Endpoint("telnet", _opener(lab)),)


SERVICES = (TelnetService(),)
