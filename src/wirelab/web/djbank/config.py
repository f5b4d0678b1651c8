"""The Django payments app's data directory: its secret key, its superuser, its database.

The process that starts the app (the lab, ``wirelab web django serve``) calls
:func:`prepare`; the gunicorn worker that runs it calls :func:`load`. Both only touch files,
so no Django is imported on the starting side. The directory is private (``0700``), and its
two files ``0600``:

* ``secret_key``: Django's ``SECRET_KEY`` (it signs sessions and password-reset tokens),
  made once with :mod:`secrets` and kept, so sessions outlive a restart;
* ``app.json``: the superuser's password and the host names the app answers to;
* ``djbank.sqlite3``: the database, created and migrated by the worker at start.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wirelab.config import private_dir
from wirelab.errors import ConfigError

__all__ = ["DATA_ENV", "DEFAULT_HOSTS", "AppConfig", "load", "prepare"]

#: Host names the app answers to unless told otherwise (Django's ALLOWED_HOSTS: any other
#: Host header gets a 400, the defence against Host-header poisoning).
DEFAULT_HOSTS: tuple[str, ...] = ("www.example.com", "localhost", "127.0.0.1", "[::1]")
#: The variable that tells a gunicorn child where the app's data directory is.
DATA_ENV = "WIRELAB_DJBANK_DIR"
_SECRET = "secret_key"  # noqa: S105 - a file name
_CONFIG = "app.json"
DATABASE = "djbank.sqlite3"


@dataclass(frozen=True)
class AppConfig:
    """What one instance of the app needs to start.

    Attributes:
        data_dir: its private directory.
        secret_key: Django's ``SECRET_KEY``.
        admin_password: the ``admin`` superuser's password.
        allowed_hosts: the Host header values it answers.
    """

    data_dir: Path
    secret_key: str
    admin_password: str
    allowed_hosts: tuple[str, ...] = DEFAULT_HOSTS

    @property
    def database(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / DATABASE


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def prepare(
    data_dir: Path, *, admin_password: str, allowed_hosts: Sequence[str] = DEFAULT_HOSTS
) -> AppConfig:
    """Make ``data_dir`` ready for the app (a secret key made once) and return its config.

    Raises:
        ConfigError: the directory cannot be used, or an empty password or host list.
    """
    if not admin_password:
        raise ConfigError("the djbank superuser needs a password")
    hosts = tuple(h for h in allowed_hosts if h)
    if not hosts:
        raise ConfigError("the djbank app needs at least one allowed host name")
    private_dir(data_dir)
    secret = data_dir / _SECRET
    try:
        if not secret.exists():
            _write_private(secret, secrets.token_urlsafe(50))
        _write_private(
            data_dir / _CONFIG,
            json.dumps({"admin_password": admin_password, "allowed_hosts": list(hosts)}),
        )
    except OSError as exc:
        raise ConfigError(f"cannot write the djbank settings in {data_dir}: {exc}") from exc
    return load(data_dir)


def load(data_dir: Path) -> AppConfig:
    """Read what :func:`prepare` wrote.

    Raises:
        ConfigError: the directory was not prepared, or its files are damaged.
    """
    try:
        secret_key = (data_dir / _SECRET).read_text(encoding="utf-8").strip()
        document = json.loads((data_dir / _CONFIG).read_text(encoding="utf-8"))
        password = str(document["admin_password"])
        hosts = tuple(str(h) for h in document["allowed_hosts"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{data_dir} is not a prepared djbank directory ({exc})") from exc
    if len(secret_key) < 32 or not password or not hosts:
        raise ConfigError(f"{data_dir} holds a damaged djbank configuration")
    return AppConfig(data_dir, secret_key, password, hosts)
