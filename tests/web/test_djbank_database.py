"""The djbank data directory and database: prepared privately, made from a cached template,
migrated and seeded, and the admin's password kept in line with the lab's.

Django is configured once per process, so each start here is a child Python (as the gunicorn
worker is), never this test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from wirelab.errors import ConfigError
from wirelab.web.djbank.config import load, prepare

START = """
import json, sys
from pathlib import Path
from wirelab.web.djbank.config import load
from wirelab.web.djbank.settings import configure
config = load(Path(sys.argv[1]))
configure(config)
from wirelab.web.djbank.database import ready_database
how = ready_database(config)
from django.contrib.auth import authenticate
print(json.dumps({
    "how": how,
    "admin": authenticate(username="admin", password=sys.argv[2]) is not None,
    "brandon": authenticate(username="brandon", password="atigdng") is not None,
}))
"""


def start(data: Path, cache: Path, password: str) -> dict[str, object]:
    """Start the app's database in a child Python, as the gunicorn worker does."""
    done = subprocess.run(
        [sys.executable, "-c", START, str(data), password],
        env=dict(os.environ, XDG_CACHE_HOME=str(cache)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rows(database: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(database)) as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


def test_the_directory_is_private_and_the_secret_key_kept(tmp_path: Path) -> None:
    first = prepare(tmp_path / "d", admin_password="one")
    second = prepare(tmp_path / "d", admin_password="two")
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 50
    assert second.admin_password == "two" and load(tmp_path / "d").admin_password == "two"
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    for name in ("secret_key", "app.json"):
        assert (tmp_path / "d" / name).stat().st_mode & 0o777 == 0o600


def test_bad_configurations_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password"):
        prepare(tmp_path / "d", admin_password="")
    with pytest.raises(ConfigError, match="host"):
        prepare(tmp_path / "d", admin_password="x", allowed_hosts=("",))
    with pytest.raises(ConfigError, match="not a prepared"):
        load(tmp_path / "nowhere")
    prepare(tmp_path / "e", admin_password="x")
    (tmp_path / "e" / "app.json").write_text("{not json")
    with pytest.raises(ConfigError):
        load(tmp_path / "e")


@dataclass(frozen=True)
class Built:
    """One database made from nothing (migrated, seeded, the admin's password ``pw-a``)."""

    first: dict[str, object]
    cache: Path  # the template cache it left behind, to copy (never changed in place)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    # Making a database from nothing is the slow start (migrations, password hashes): done
    # once here; each test that needs a cache works on its own copy of this one.
    root = tmp_path_factory.mktemp("djbank-built")
    prepare(root / "a", admin_password="pw-a")
    first = start(root / "a", root / "cache", "pw-a")
    return Built(first, root / "cache")


def copied_cache(built: Built, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(built.cache, cache)
    return cache


def test_a_new_database_is_seeded_then_kept_as_a_template(built: Built, tmp_path: Path) -> None:
    assert built.first == {"how": "new", "admin": True, "brandon": True}
    cache = copied_cache(built, tmp_path)
    templates = list((built.cache / "wirelab" / "djbank").glob("*.sqlite3"))
    assert len(templates) == 1
    assert templates[0].stat().st_mode & 0o777 == 0o600
    assert (built.cache / "wirelab" / "djbank").stat().st_mode & 0o777 == 0o700
    assert rows(templates[0], "djbank_payment") == 3
    assert rows(templates[0], "django_session") == 0

    prepare(tmp_path / "b", admin_password="pw-a")
    second = start(tmp_path / "b", cache, "pw-a")
    assert second == {"how": "template", "admin": True, "brandon": True}
    assert rows(tmp_path / "b" / "djbank.sqlite3", "djbank_payment") == 3
    assert rows(tmp_path / "b" / "djbank.sqlite3", "auth_user") == 5  # 2 users, 2 payees, admin

    # The lab's admin password changes: the existing database follows it, the old one is out.
    prepare(tmp_path / "b", admin_password="new")
    again = start(tmp_path / "b", cache, "new")
    assert again == {"how": "existing", "admin": True, "brandon": True}
    assert start(tmp_path / "b", cache, "pw-a")["admin"] is False


def test_another_admin_password_makes_its_own_template(built: Built, tmp_path: Path) -> None:
    cache = copied_cache(built, tmp_path)
    prepare(tmp_path / "c", admin_password="pw-c")
    other = start(tmp_path / "c", cache, "pw-c")
    assert other == {"how": "new", "admin": True, "brandon": True}
    assert len(list((cache / "wirelab" / "djbank").glob("*.sqlite3"))) == 2


def test_a_damaged_template_costs_time_not_correctness(built: Built, tmp_path: Path) -> None:
    cache = copied_cache(built, tmp_path)
    (template,) = (cache / "wirelab" / "djbank").glob("*.sqlite3")
    template.write_bytes(b"this is not a database" * 100)
    prepare(tmp_path / "b", admin_password="pw-a")
    result = start(tmp_path / "b", cache, "pw-a")
    assert result == {"how": "new", "admin": True, "brandon": True}
    assert rows(template, "djbank_payment") == 3  # made again, whole
