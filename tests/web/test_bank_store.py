"""The payments store (the book's bank.py): seeded once, parameterised, bounded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wirelab.errors import ConfigError
from wirelab.web.bank.store import MAX_DOLLARS, MAX_MEMO, SEED, BankFull, PaymentStore


def test_a_new_store_holds_the_books_three_payments(tmp_path: Path) -> None:
    store = PaymentStore(tmp_path / "bank.db")
    assert [(p.debit, p.credit, p.dollars, p.memo) for p in store.payments_of("brandon")] == list(
        SEED
    )
    assert store.balance("brandon") == 25 - 125 - 200
    assert [p.memo for p in store.payments_of("liz")] == ["Payment for writing that code"]


def test_reopening_or_racing_creators_seed_once(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    threads = [threading.Thread(target=PaymentStore, args=(path,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert PaymentStore(path).count() == len(SEED)


def test_security_sql_in_values_is_stored_as_text(tmp_path: Path) -> None:
    store = PaymentStore(tmp_path / "bank.db")
    evil = "x'); DROP TABLE payment; --"
    store.add_payment(evil, "psf", 1, evil)
    assert store.payments_of(evil)[0].memo == evil
    assert store.payments_of("' OR '1'='1") == []
    assert store.count() == len(SEED) + 1


def test_the_store_is_bounded(tmp_path: Path) -> None:
    store = PaymentStore(tmp_path / "bank.db", max_payments=len(SEED) + 1)
    store.add_payment("sam", "psf", 1, "last one")
    with pytest.raises(BankFull):
        store.add_payment("sam", "psf", 1, "one too many")
    assert store.count() == len(SEED) + 1


@pytest.mark.parametrize(
    ("debit", "credit", "dollars", "memo"),
    [
        ("", "psf", 1, "m"),
        ("sam", "p" * 33, 1, "m"),
        ("sam", "psf", 0, "m"),
        ("sam", "psf", -1, "m"),
        ("sam", "psf", MAX_DOLLARS + 1, "m"),
        ("sam", "psf", 1, "m" * (MAX_MEMO + 1)),
    ],
)
def test_out_of_bounds_fields_are_refused(
    tmp_path: Path, debit: str, credit: str, dollars: int, memo: str
) -> None:
    store = PaymentStore(tmp_path / "bank.db")
    with pytest.raises(ConfigError):
        store.add_payment(debit, credit, dollars, memo)
    assert store.count() == len(SEED)
