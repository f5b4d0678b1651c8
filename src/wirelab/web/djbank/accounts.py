"""Who may log in to the Django payments app, and who may be paid (no Django imported here).

* The book's chapter 11 logins, as its Flask apps hard-code them: ``brandon`` (``atigdng``)
  and ``sam`` (``xyzzy``). Ordinary users: they see their payments and pay, never the admin.
* The payees of the book's seed payments, ``psf`` and ``liz``: accounts that can be paid
  but cannot log in (no usable password).
* ``admin``: the lab superuser, the only one the admin site lets in. Its password is the
  first lab account's (:data:`wirelab.config.LAB_ACCOUNTS`, ``abc123``), so it is written
  down in one place and changes with the lab's.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirelab.config import LAB_ACCOUNTS

__all__ = ["ADMIN_USER", "BOOK_USERS", "PAYEES", "SEED_PAYMENTS", "Login", "admin_login"]


@dataclass(frozen=True)
class Login:
    """A user of the app with a password."""

    user: str
    password: str


#: The book's chapter 11 logins (its Flask apps' list): ordinary users.
BOOK_USERS: tuple[Login, ...] = (Login("brandon", "atigdng"), Login("sam", "xyzzy"))
#: Accounts that receive money in the book's seed data but never log in.
PAYEES: tuple[str, ...] = ("psf", "liz")
#: The lab superuser's name.
ADMIN_USER = "admin"
#: The book's three payments: (debit, credit, dollars, memo).
SEED_PAYMENTS: tuple[tuple[str, str, int, str], ...] = (
    ("brandon", "psf", 125, "Registration for PyCon"),
    ("brandon", "liz", 200, "Payment for writing that code"),
    ("sam", "brandon", 25, "Gas money-thanks for the ride!"),
)


def admin_login(password: str | None = None) -> Login:
    """The superuser: ``admin`` with ``password``, else the first lab account's password."""
    return Login(ADMIN_USER, password if password is not None else LAB_ACCOUNTS[0].password)
