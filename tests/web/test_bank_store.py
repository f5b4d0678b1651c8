"""The payments store (the book's bank.py): seeded once, parameterised, bounded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from wirelab.errors import ConfigError
from wirelab.web.bank.hardened import validate_payment
from wirelab.web.bank.store import (
    MAX_DOLLARS,
    MAX_MEMO,
    PAYEES,
    SEED,
    USERS,
    BankFull,
    PaymentStore,
)


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


@settings(max_examples=300, deadline=None)
@given(
    account=st.one_of(
        st.sampled_from(["sam", "psf", "liz", "hacker", "brandon"]), st.text(max_size=40)
    ),
    dollars=st.one_of(st.text(max_size=12), st.integers(-10, 2_000_000).map(str)),
    memo=st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=220),
        st.text(max_size=220),
    ),
)
def test_property_a_payment_the_hardened_app_accepts_fits_the_store(
    account: str, dollars: str, memo: str
) -> None:
    # validate_payment answers None or one line; whatever it lets through, the store takes.
    complaint = validate_payment("brandon", account, dollars, memo)
    event("accepted" if complaint is None else "refused")
    if complaint is not None:
        assert isinstance(complaint, str) and complaint and "\n" not in complaint
        return
    assert account in (*USERS, *PAYEES) and account != "brandon"
    assert 1 <= int(dollars) <= MAX_DOLLARS and dollars.isascii()
    assert 0 < len(memo) <= MAX_MEMO and memo.isprintable()
