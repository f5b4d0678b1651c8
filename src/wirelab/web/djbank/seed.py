"""A new database gets the book's users, payees and three payments; at every start the
admin's password is brought in line with the lab's (run inside a configured Django).

The admin's password is checked only when the lab's has changed since it was last set here
(an HMAC of it, under the app's secret key, is kept in ``admin.seeded``): a check is a
password hash, a fifth of a second of CPU, at every start of every lab otherwise. A password
changed through the admin site stays until the lab's own changes.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from django.contrib.auth import get_user_model  # type: ignore[import-untyped]
from django.db import transaction  # type: ignore[import-untyped]

from wirelab.web.djbank.accounts import BOOK_USERS, PAYEES, SEED_PAYMENTS, admin_login
from wirelab.web.djbank.config import AppConfig
from wirelab.web.djbank.models import Payment

__all__ = ["seed"]

_MARK = "admin.seeded"


def _fingerprint(config: AppConfig) -> str:
    key = config.secret_key.encode()
    return hmac.new(key, config.admin_password.encode(), hashlib.sha256).hexdigest()


def _marked(config: AppConfig) -> bool:
    try:
        seen = (config.data_dir / _MARK).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(seen, _fingerprint(config))


def _mark(config: AppConfig) -> None:
    path = config.data_dir / _MARK
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(_fingerprint(config))


def seed(config: AppConfig, *, admin_current: bool = False) -> bool:
    """Seed an empty database (True when it was empty); keep the admin's password current.

    Args:
        admin_current: the caller knows the admin's password is the lab's (a template made
            with it was just copied), so it is not checked.
    """
    users = get_user_model()
    admin = admin_login(config.admin_password)
    with transaction.atomic():
        fresh = not users.objects.exists()
        if fresh:
            for login in BOOK_USERS:
                users.objects.create_user(login.user, password=login.password)
            for payee in PAYEES:
                users.objects.create_user(payee, password=None)  # can be paid, cannot log in
            users.objects.create_superuser(admin.user, email="", password=admin.password)
            Payment.objects.bulk_create(
                Payment(debit=d, credit=c, dollars=n, memo=m) for d, c, n, m in SEED_PAYMENTS
            )
        elif not admin_current and not _marked(config):
            superuser, _ = users.objects.get_or_create(
                username=admin.user, defaults={"is_staff": True, "is_superuser": True}
            )
            if not superuser.check_password(admin.password):
                superuser.set_password(admin.password)
                superuser.save(update_fields=["password"])
    _mark(config)
    return fresh
