"""The lab service ``bank`` (chapter 11): the two payments apps and the attacker's site.

Three endpoints on the lab's web host, each a gunicorn child behind the buffering front
(:class:`wirelab.web.serving.WSGIService`):

========== ====== ======================================== =====
endpoint   port   what                                     TLS
========== ====== ======================================== =====
insecure   10500  :mod:`.insecure` (the book's app_insecure) no
hardened   10501  :mod:`.hardened` (app_improved, and more)  yes
attacker   10502  :mod:`.attacker` (CSRF and XSS pages)       no
========== ====== ======================================== =====

Each app has its own SQLite file under ``STATE/bank/`` (an attack on one never shows in the
other); the hardened app's session key is ``STATE/bank/secret.key`` (mode 0600, made once). The
insecure app is bound to loopback whatever the lab's bind host is: it is deliberately
insecure. The attacker learns the banks' URLs from the bound addresses.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from wirelab.config import default_port
from wirelab.errors import ConfigError
from wirelab.lab.service import LabContext
from wirelab.web.bank.urls import endpoint_url
from wirelab.web.serving import BoundWeb, WebEndpoint, WSGIService

__all__ = ["BANK_HOST", "ENDPOINTS", "BankService", "bank_dir"]

BANK_HOST = "www.example.com"
#: The service's endpoints, in order.
ENDPOINTS = ("insecure", "hardened", "attacker")


def bank_dir(state_dir: Path) -> Path:
    """Where the bank's databases and key live under the lab's state directory."""
    return state_dir / "bank"


def _secret_file(directory: Path) -> Path:
    path = directory / "secret.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path


class BankService(WSGIService):
    """The insecure and hardened payments apps, and the attacker's site."""

    name = "bank"
    host = BANK_HOST
    chapter = 11
    description = "payments apps, insecure and hardened (HTTPS), and an attacker (chapter 11)"
    threads = 8

    def __init__(self, only: str | None = None) -> None:
        """``only``: serve just this endpoint (``wirelab web bank serve``)."""
        if only is not None and only not in ENDPOINTS:
            raise ConfigError(f"the bank has no endpoint {only!r} ({', '.join(ENDPOINTS)})")
        self.only = only

    def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
        every = (
            WebEndpoint("insecure", app="wirelab.web.bank.insecure:insecure()"),
            WebEndpoint("hardened", tls=True, app="wirelab.web.bank.hardened:hardened()"),
            WebEndpoint("attacker", app="wirelab.web.bank.attacker:attacker()"),
        )
        return tuple(e for e in every if self.only in (None, e.name))

    def bind_host(self, lab: LabContext, endpoint: WebEndpoint) -> str:
        return "127.0.0.1" if endpoint.name == "insecure" else lab.bind_host

    def environment(self, lab: LabContext, bound: BoundWeb) -> dict[str, str]:
        directory = bank_dir(lab.state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        env = {
            "WIRELAB_BANK_INSECURE_DB": str(directory / "insecure.db"),
            "WIRELAB_BANK_HARDENED_DB": str(directory / "hardened.db"),
            "WIRELAB_BANK_SECRET": str(_secret_file(directory)),
        }
        for name in ("insecure", "hardened"):
            # Served alone (``web bank serve --app attacker``), the banks are where their
            # own ``serve`` puts them by default.
            host, port, tls = bound.get(
                name, ("127.0.0.1", default_port(self.name, name), name == "hardened")
            )
            env[f"WIRELAB_BANK_{name.upper()}_URL"] = endpoint_url(host, port, tls)
        return env
