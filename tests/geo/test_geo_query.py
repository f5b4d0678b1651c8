"""Hypothesis properties of the query parser (sans-I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.geo._query import MAX_PARTS, MAX_QUERY_CHARS, QueryError, fold, parse_query


@given(st.text(max_size=2000))
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    try:
        parsed = parse_query(text)
    except QueryError:
        return
    assert 0 < len(parsed.text) <= MAX_QUERY_CHARS
    assert len(parsed.parts) <= MAX_PARTS
    for part in parsed.parts:
        assert part == part.strip() and part and "," not in part
        assert "  " not in part
    if parsed.postcode is not None:
        assert len(parsed.postcode) == 5 and parsed.postcode.isdigit()


@given(st.text(max_size=200))
def test_fold_is_idempotent_and_lower(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert once == once.strip()


words = st.from_regex(r"[A-Za-z][A-Za-z .]{0,20}[A-Za-z]", fullmatch=True)


@given(st.lists(words, min_size=1, max_size=4), st.from_regex(r"[0-9]{5}", fullmatch=True))
def test_a_zip_code_at_the_end_is_taken_out(parts: list[str], code: str) -> None:
    parsed = parse_query(", ".join(parts) + " " + code)
    assert parsed.postcode == code
    assert all(code not in p for p in parsed.parts)


@given(st.lists(words, min_size=1, max_size=5))
def test_parts_survive_splitting(parts: list[str]) -> None:
    parsed = parse_query(" , ".join(parts))
    assert [fold(p) for p in parsed.parts] == [fold(p) for p in parts if fold(p)]


def test_examples() -> None:
    parsed = parse_query("207 N. Defiance St, Archbold, OH 43502-1234")
    assert parsed.parts == ("207 N. Defiance St", "Archbold", "OH")
    assert parsed.postcode == "43502"
    assert parse_query("43502").parts == ()
    assert fold("Zürich-Höngg") == "zurich hongg"
    assert fold("St. Louis") == "st louis"


@pytest.mark.parametrize("bad", ["", " \t ", "x" * 10_000, "a\x07b", "\ud800"])
def test_bad_text(bad: str) -> None:
    with pytest.raises(QueryError):
        parse_query(bad)


def test_query_error_is_a_wirelab_config_error() -> None:
    """Issue 10 section 3: bad arguments are ConfigError, never a bare ValueError."""
    from wirelab.errors import ConfigError, WirelabError

    with pytest.raises(ConfigError) as caught:
        parse_query("")
    assert isinstance(caught.value, WirelabError) and not isinstance(caught.value, ValueError)


def test_only_ascii_digits_make_a_zip_code() -> None:
    """\\d matches every Unicode decimal digit; a US ZIP code is five ASCII ones."""
    assert parse_query("Archbold, OH 43502").postcode == "43502"
    assert parse_query("\u0664\u0663\u0665\u0660\u0662").postcode is None  # Arabic-Indic 43502
