"""Where the bank's endpoints listen, as URLs a browser or a client dials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wirelab.errors import ConfigError

if TYPE_CHECKING:
    from wirelab.lab.state import LabState

__all__ = ["BankURLs", "endpoint_url"]


def endpoint_url(address: str, port: int, tls: bool) -> str:
    """The URL a browser dials for a bound address (a wildcard bind means loopback)."""
    if address in ("", "0.0.0.0", "::"):
        address = "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    return f"{'https' if tls else 'http'}://{address}:{port}"


@dataclass(frozen=True)
class BankURLs:
    """Where the lab's two banks and the attacker's site listen."""

    insecure: str
    hardened: str
    attacker: str

    @classmethod
    def from_lab(cls, state: LabState) -> BankURLs:
        """The running lab's ``bank`` endpoints.

        Raises:
            ConfigError: the lab has no bank service.
        """
        view = state.service("bank")
        urls = {}
        for name in ("insecure", "hardened", "attacker"):
            ep = view.endpoint(name)
            urls[name] = endpoint_url(ep.address, ep.port, ep.tls)
        return cls(**urls)

    def bank(self, which: str) -> str:
        """The URL of the ``insecure`` or ``hardened`` bank."""
        if which not in ("insecure", "hardened"):
            raise ConfigError(f"no bank called {which!r} (insecure or hardened)")
        return self.insecure if which == "insecure" else self.hardened
