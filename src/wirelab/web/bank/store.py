"""The payments store of chapter 11 (the book's ``bank.py``): SQLite with parameterised queries.

One table, ``payment(id, debit, credit, dollars, memo)``, seeded on creation with the book's
three payments. Unlike the book's, every call opens and closes its own connection (the apps
serve from several threads), seeding happens once even when two threads race to create the
file, and the store is bounded: at most ``max_payments`` rows, each field within its limit
(:data:`MAX_ACCOUNT`, :data:`MAX_MEMO`, :data:`MAX_DOLLARS`). Every value reaches SQLite as a
parameter, never as SQL text, so no field can inject SQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from wirelab.errors import ConfigError, WirelabError

__all__ = [
    "MAX_ACCOUNT",
    "MAX_DOLLARS",
    "MAX_MEMO",
    "MAX_PAYMENTS",
    "PAYEES",
    "SEED",
    "USERS",
    "BankFull",
    "Payment",
    "PaymentStore",
]

#: The book's logins (``app_improved.py``): a teaching app's accounts, for the lab only.
USERS: dict[str, str] = {"brandon": "atigdng", "sam": "xyzzy"}
#: Accounts that can be paid without logging in: the book's payees, and the attacker's.
PAYEES: tuple[str, ...] = ("psf", "liz", "hacker")
#: The book's three payments: (debit, credit, dollars, memo).
SEED: tuple[tuple[str, str, int, str], ...] = (
    ("brandon", "psf", 125, "Registration for PyCon"),
    ("brandon", "liz", 200, "Payment for writing that code"),
    ("sam", "brandon", 25, "Gas money-thanks for the ride!"),
)
#: Longest account name, memo (characters); largest payment (dollars); most rows kept.
MAX_ACCOUNT = 32
MAX_MEMO = 200
MAX_DOLLARS = 1_000_000
MAX_PAYMENTS = 10_000
#: Seconds a writer waits for another's lock before giving up.
LOCK_TIMEOUT = 5.0


class BankFull(WirelabError):
    """The store holds ``max_payments`` payments: no more are accepted."""


class Payment(NamedTuple):
    """One row of the ``payment`` table."""

    id: int
    debit: str
    credit: str
    dollars: int
    memo: str


class PaymentStore:
    """The SQLite file at ``path``, created and seeded on first use.

    Raises:
        ConfigError: ``max_payments`` is not positive.
    """

    def __init__(self, path: str | Path, *, max_payments: int = MAX_PAYMENTS) -> None:
        if max_payments < 1:
            raise ConfigError("max_payments must be at least 1")
        self.path = Path(path)
        self.max_payments = max_payments
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one creator seeds; a racing one sees its rows
            db.execute(
                "CREATE TABLE IF NOT EXISTS payment (id INTEGER PRIMARY KEY,"
                " debit TEXT NOT NULL, credit TEXT NOT NULL, dollars INTEGER NOT NULL,"
                " memo TEXT NOT NULL)"
            )
            (rows,) = db.execute("SELECT COUNT(*) FROM payment").fetchone()
            if rows == 0:
                db.executemany(
                    "INSERT INTO payment (debit, credit, dollars, memo) VALUES (?, ?, ?, ?)",
                    SEED,
                )
            db.execute("COMMIT")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def add_payment(self, debit: str, credit: str, dollars: int, memo: str) -> int:
        """Record a payment; return its id.

        Raises:
            ConfigError: a field is out of its bounds (callers validate first).
            BankFull: the store is full.
        """
        if not (0 < len(debit) <= MAX_ACCOUNT and 0 < len(credit) <= MAX_ACCOUNT):
            raise ConfigError(f"account names are 1-{MAX_ACCOUNT} characters")
        if not 0 < dollars <= MAX_DOLLARS:
            raise ConfigError(f"a payment is 1-{MAX_DOLLARS} dollars")
        if len(memo) > MAX_MEMO:
            raise ConfigError(f"a memo is at most {MAX_MEMO} characters")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                (rows,) = db.execute("SELECT COUNT(*) FROM payment").fetchone()
                if rows >= self.max_payments:
                    raise BankFull(f"the bank holds {rows} payments, its limit")
                cursor = db.execute(
                    "INSERT INTO payment (debit, credit, dollars, memo) VALUES (?, ?, ?, ?)",
                    (debit, credit, dollars, memo),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid or 0)

    def payments_of(self, account: str) -> list[Payment]:
        """Every payment to or from ``account``, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, debit, credit, dollars, memo FROM payment"
                " WHERE credit = ? OR debit = ? ORDER BY id",
                (account, account),
            ).fetchall()
        return [Payment(*row) for row in rows]

    def balance(self, account: str) -> int:
        """Dollars paid to ``account`` minus dollars it paid."""
        with self._connect() as db:
            (total,) = db.execute(
                "SELECT COALESCE(SUM(CASE WHEN credit = ? THEN dollars ELSE -dollars END), 0)"
                " FROM payment WHERE credit = ? OR debit = ?",
                (account, account, account),
            ).fetchone()
        return int(total)

    def count(self) -> int:
        """How many payments the store holds."""
        with self._connect() as db:
            (rows,) = db.execute("SELECT COUNT(*) FROM payment").fetchone()
        return int(rows)
