"""The book's remote functions, corrected: properties against the quadratic formula."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from wirelab.rpc.functions import RPCArgumentError, addtogether, lengths, quadratic, remote_repr

coefficient = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-1000, 1000)


@given(coefficient, coefficient, coefficient)
def test_quadratic_matches_the_formula(a: float, b: float, c: float) -> None:
    assume(a != 0 and abs(a) > 1e-3)
    disc = b * b - 4 * a * c
    if disc < 0:
        with pytest.raises(RPCArgumentError, match="no real roots"):
            quadratic(a, b, c)
        return
    roots = quadratic(a, b, c)
    assert roots == sorted(roots) and len(set(roots)) == len(roots) and 1 <= len(roots) <= 2
    expected = sorted({(-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)})
    scale = max(abs(a), abs(b), abs(c), 1.0)
    for root in roots:  # each is a root: the residual is small for its size
        size = max(1.0, abs(root))
        assert abs(a * root * root + b * root + c) <= 1e-6 * scale * size * size
    if len(roots) == len(expected):
        for got, want in zip(roots, expected, strict=True):
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6 * scale / abs(a))


def test_quadratic_keeps_a_subnormal_coefficient() -> None:
    """-x² - 5e-324 = 0 has no real root (scaling c by 2 once rounded it to zero: one root)."""
    with pytest.raises(RPCArgumentError, match="no real roots"):
        quadratic(-1, 0.0, -5e-324)
    assert quadratic(1e300, 0.0, -1e300) == [-1.0, 1.0]  # large ones are still scaled


def test_quadratic_the_books_bug_is_gone() -> None:
    assert quadratic(2, -4, 0) == [0.0, 2.0]  # the book's server says [0.0, 8.0]
    assert quadratic(1, 2, 1) == [-1.0]
    assert quadratic(1, -3, 2) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 2, 1), "a = 0"),
        ((1, 0, 1), "no real roots"),
        (("1", 0, 1), "numbers"),
        ((True, 0, 1), "numbers"),
        ((float("inf"), 0, 1), "finite"),
    ],
)
def test_quadratic_refuses_clearly(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(RPCArgumentError, match=message):
        quadratic(*args)


def test_addtogether() -> None:
    assert addtogether() == 0
    assert addtogether("x", "ÿ", "z") == "xÿz"
    assert addtogether(20, 30, 4, 1) == 55
    assert addtogether([1], [2]) == [1, 2]
    with pytest.raises(RPCArgumentError, match="cannot add str to int"):
        addtogether(1, "a")
    with pytest.raises(RPCArgumentError, match="structs"):
        addtogether({}, {})


def test_remote_repr_really_returns_the_repr() -> None:
    assert remote_repr([1, 2.0, "three"]) == "[1, 2.0, 'three']"
    assert remote_repr("x") == "'x'"


def test_lengths_is_the_books() -> None:
    assert lengths([1, 2, 3], 27, {"Sirius": -1.46, "Rigel": 0.12}) == [
        [3, [1, 2, 3]],
        [None, 27],
        [2, {"Sirius": -1.46, "Rigel": 0.12}],
    ]
