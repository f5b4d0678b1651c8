"""What gunicorn loads: ``wirelab.web.djbank.wsgi:application_for('DATA_DIR')``.

Called once in the worker process: it reads the prepared directory (:mod:`.config`),
configures Django there (:mod:`.settings`), makes the database ready (:mod:`.database`:
a copy of a cached template, ``migrate``, the seed) and returns Django's WSGI handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["application_for", "application_from_environment"]


def application_for(data_dir: str) -> Callable[..., Any]:
    """The app for the prepared ``data_dir``, its database migrated and seeded."""
    import logging

    from wirelab.web.djbank.config import load
    from wirelab.web.djbank.settings import configure

    began = time.monotonic()
    config = load(Path(data_dir))
    configure(config)
    from django.core.wsgi import get_wsgi_application  # type: ignore[import-untyped]

    from wirelab.web.djbank.database import ready_database

    how = ready_database(config)
    application: Callable[..., Any] = get_wsgi_application()
    logging.getLogger(__name__).info(
        "djbank ready in %.2f s (%s database %s)",
        time.monotonic() - began,
        how,
        config.database,
    )
    return application


def application_from_environment() -> Callable[..., Any]:
    """The app for the directory in ``$WIRELAB_DJBANK_DIR`` (what the lab service sets)."""
    import os

    from wirelab.errors import ConfigError
    from wirelab.web.djbank.config import DATA_ENV

    where = os.environ.get(DATA_ENV, "")
    if not where:
        raise ConfigError(f"${DATA_ENV} names no djbank data directory")
    return application_for(where)
