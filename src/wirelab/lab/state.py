"""The lab state file: one JSON document that every client and the CLI read.

``wirelab lab up`` writes it once every service is ready and removes it on a clean stop.
It lists every endpoint, the CA bundle to trust, and the lab accounts, so that a command such
as ``wirelab udp client`` needs no host or port while a lab runs.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wirelab.config import Account, private_dir, state_dir
from wirelab.errors import ConfigError
from wirelab.lab.service import BoundEndpoint
from wirelab.net.tlsctx import client_context

__all__ = ["STATE_FILE", "LabState", "ServiceView", "pid_alive", "state_path"]

STATE_FILE = "lab.json"
_NOT_RUNNING = "no lab is running (start one with `wirelab lab up --detach`)"


def state_path(directory: Path | None = None) -> Path:
    """Return the state file's path in ``directory`` (default: the user's state directory)."""
    return (directory or state_dir()) / STATE_FILE


def pid_alive(pid: int) -> bool:
    """True when a process with this PID exists (and is not a zombie we could see)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class ServiceView:
    """The endpoints of one lab service, as a test fixture or a tour step sees them."""

    name: str
    host: str
    endpoints: dict[str, BoundEndpoint]
    state: LabState

    def endpoint(self, name: str | None = None) -> BoundEndpoint:
        """Return the endpoint called ``name`` (default: the service's only or first one)."""
        if name is None:
            return self.endpoints.get(self.name) or next(iter(self.endpoints.values()))
        try:
            return self.endpoints[name]
        except KeyError:
            raise ConfigError(f"lab service {self.name!r} has no endpoint {name!r}") from None

    @property
    def address(self) -> tuple[str, int]:
        """``(address, port)`` of the default endpoint."""
        return self.endpoint().sockaddr


@dataclass(frozen=True)
class LabState:
    """What a running lab publishes."""

    endpoints: tuple[BoundEndpoint, ...]
    ca: str
    accounts: tuple[Account, ...]
    directory: str
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    unavailable: dict[str, str] = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------

    def services(self) -> list[str]:
        """Names of the services that run, in start order."""
        return list(dict.fromkeys(ep.service for ep in self.endpoints))

    def service(self, name: str) -> ServiceView:
        """Return one service's endpoints.

        Raises:
            ConfigError: the lab has no such service (or it is unavailable here, and why).
        """
        eps = {ep.endpoint: ep for ep in self.endpoints if ep.service == name}
        if not eps:
            if name in self.unavailable:
                raise ConfigError(f"lab service {name!r} is unavailable: {self.unavailable[name]}")
            raise ConfigError(f"the lab has no service {name!r}")
        first = next(iter(eps.values()))
        return ServiceView(name, first.host, eps, self)

    def endpoint(self, service: str, endpoint: str | None = None) -> BoundEndpoint:
        """Shortcut for ``state.service(service).endpoint(endpoint)``."""
        return self.service(service).endpoint(endpoint)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the lab CA (and nothing is turned off)."""
        return client_context(cafile=self.ca)

    @property
    def account(self) -> Account:
        """The first lab account."""
        return self.accounts[0]

    # -- persistence --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the state-file document."""
        return {
            "pid": self.pid,
            "started": self.started,
            "directory": self.directory,
            "services": [ep.to_json() for ep in self.endpoints],
            "unavailable": [{"name": k, "reason": v} for k, v in self.unavailable.items()],
            "ca": self.ca,
            "accounts": [{"user": a.user, "password": a.password} for a in self.accounts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        """Read a state-file document."""
        try:
            return cls(
                endpoints=tuple(BoundEndpoint.from_json(e) for e in data["services"]),
                ca=str(data["ca"]),
                accounts=tuple(Account(a["user"], a["password"]) for a in data["accounts"]),
                directory=str(data.get("directory", "")),
                pid=int(data["pid"]),
                started=float(data.get("started", 0.0)),
                unavailable={u["name"]: u["reason"] for u in data.get("unavailable", [])},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the lab state file is damaged: {exc!r}") from exc

    def save(self, path: Path) -> None:
        """Write the state file atomically (readers never see half a file), mode 0600.

        Raises:
            ConfigError: the file cannot be written there (and why).
        """
        private_dir(path.parent)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # lab passwords
            with open(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(self.to_json(), indent=2) + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ConfigError(
                f"cannot write the lab state file {path}: {exc.strerror or exc}"
            ) from exc

    @classmethod
    def load(cls, path: Path | None = None, *, check_alive: bool = True) -> LabState:
        """Read the state file of the running lab.

        Raises:
            ConfigError: no lab runs (no file, or its process is gone), or the file is damaged.
        """
        path = path or state_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(_NOT_RUNNING) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the lab state file {path}: {exc}") from exc
        state = cls.from_json(data)
        if check_alive and not pid_alive(state.pid):
            raise ConfigError(f"{_NOT_RUNNING}; a stale state file remains at {path}")
        return state
