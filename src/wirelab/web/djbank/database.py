"""The app's SQLite database made ready at start: from a cached template, migrated, seeded.

A new database costs ``migrate`` (some twenty migrations of Django's own apps, a commit and
an fsync each) and three scrypt password hashes for the seed users: about a second of CPU
and, on a busy machine, several seconds of wall time, in every test lab. So the first new
database made for a given schema and seed is kept as a **template** in the user's cache
directory (``$XDG_CACHE_HOME/wirelab/djbank``, private), named by a digest of everything
that shapes it (Django's version, our migrations, the seed accounts and payments, the admin
password); the next new database is a copy of it. ``migrate`` and the seed still run after
the copy, and do nothing when the copy is current, so a stale or damaged template costs time,
never correctness. Copies are made with SQLite's backup API, published by rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from pathlib import Path

from wirelab.web.djbank import accounts
from wirelab.web.djbank.config import AppConfig

__all__ = ["cache_dir", "ready_database", "template_key"]

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")


def cache_dir() -> Path:
    """Where templates are kept: ``$XDG_CACHE_HOME/wirelab/djbank`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wirelab" / "djbank"


def template_key(admin_password: str) -> str:
    """A digest of everything a new, seeded database depends on."""
    import django  # type: ignore[import-untyped]

    digest = hashlib.sha256()
    digest.update(f"django {django.__version__}\n".encode())
    for path in sorted(_MIGRATIONS.glob("*.py")):
        digest.update(path.name.encode() + b"\n" + path.read_bytes())
    seed = (accounts.BOOK_USERS, accounts.PAYEES, accounts.SEED_PAYMENTS, accounts.ADMIN_USER)
    digest.update(repr(seed).encode())
    digest.update(b"\nadmin " + admin_password.encode())
    return digest.hexdigest()[:32]


def _copy(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to ``target`` consistently, published by rename."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
            contextlib.closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
        partial.chmod(0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def ready_database(config: AppConfig) -> str:
    """Migrate and seed the database (Django configured); say how: new, template or existing."""
    from django.core.management import call_command  # type: ignore[import-untyped]
    from django.db import connections  # type: ignore[import-untyped]

    from wirelab.web.djbank.seed import seed

    database = config.database
    template = cache_dir() / f"{template_key(config.admin_password)}.sqlite3"
    how = "existing"
    if not database.exists():
        how = "new"
        if template.is_file():
            try:
                _copy(template, database)
                how = "template"
            except (OSError, sqlite3.Error) as exc:
                log.warning("djbank: template %s not used: %s", template, exc)
                database.unlink(missing_ok=True)
    call_command("migrate", verbosity=0, interactive=False)
    seed(config, admin_current=how == "template")  # the template's key has its password
    if how == "new":
        connections.close_all()
        try:
            template.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _copy(database, template)
        except (OSError, sqlite3.Error) as exc:
            log.warning("djbank: no template kept in %s: %s", template.parent, exc)
    return how
