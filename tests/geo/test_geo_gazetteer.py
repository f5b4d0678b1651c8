"""The offline gazetteer: the book's address, ZIP codes, world cities, unknown places."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.geo._query import MAX_QUERY_CHARS, QueryError
from wirelab.geo.gazetteer import CACHE_FORMAT, Gazetteer

ARCHBOLD = (41.5214, -84.3072)


def near(place: object, lat: float, lon: float, tolerance: float = 0.05) -> bool:
    return abs(place.lat - lat) <= tolerance and abs(place.lon - lon) <= tolerance  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "query",
    [
        "207 N. Defiance St, Archbold, OH",
        "207 N. Defiance St, Archbold, OH 43502",
        "207 n defiance st, archbold, ohio",
        "Archbold, OH, USA",
        "Archbold OH",
        "Archbold",
        "43502",
    ],
)
def test_the_books_address_is_found_near_archbold(gazetteer: Gazetteer, query: str) -> None:
    places = gazetteer.search(query)
    assert places, query
    assert near(places[0], *ARCHBOLD), places[0]


def test_zip_code_gives_its_centroid(gazetteer: Gazetteer) -> None:
    (place,) = gazetteer.search("90210", limit=1)
    assert place.kind == "postcode" and "Beverly Hills" in place.display_name


def test_world_cities(gazetteer: Gazetteer) -> None:
    paris = gazetteer.search("Paris")
    assert paris[0].country_code == "FR" and near(paris[0], 48.8534, 2.3488)
    assert any(p.country_code == "US" for p in paris)  # Paris, Texas too, after
    tokyo = gazetteer.search("Tokyo, Japan")
    assert tokyo[0].country_code == "JP" and near(tokyo[0], 35.6895, 139.6917)
    assert gazetteer.search("zurich")[0].country_code == "CH"  # accents folded


def test_us_state_codes_win_over_country_codes(gazetteer: Gazetteer) -> None:
    assert gazetteer.search("Springfield, IL")[0].display_name.endswith("Illinois, United States")
    assert gazetteer.search("St. Louis, MO")[0].country_code == "US"
    assert gazetteer.search("Tbilisi, Georgia")[0].country_code == "GE"


def test_unknown_places_are_an_empty_list(gazetteer: Gazetteer) -> None:
    assert gazetteer.search("Atlantis, Nowhere") == []
    assert gazetteer.search("00000") == []
    assert gazetteer.search("qwzx") == []


def test_limit(gazetteer: Gazetteer) -> None:
    assert len(gazetteer.search("Springfield", limit=3)) == 3
    assert len(gazetteer.search("Springfield", limit=1000)) <= 50


@pytest.mark.parametrize("bad", ["", "   ", ",,,", "x" * (MAX_QUERY_CHARS + 1), "a\x00b", "a\nb"])
def test_bad_queries_raise(gazetteer: Gazetteer, bad: str) -> None:
    with pytest.raises(QueryError):
        gazetteer.search(bad)


@pytest.mark.slow
def test_cache_round_trip_and_rebuild(tmp_path: Path, gazetteer: Gazetteer) -> None:
    built = Gazetteer.load(tmp_path)
    assert built.source == "libraries"
    cache = tmp_path / f"gazetteer-v{CACHE_FORMAT}.json"
    assert cache.exists()
    loaded = Gazetteer.load(tmp_path)
    assert loaded.source == str(cache)
    assert len(loaded) == len(built) == len(gazetteer)
    query = "207 N. Defiance St, Archbold, OH"
    assert loaded.search(query) == built.search(query)
    cache.write_text("{not json", encoding="utf-8")  # damaged: rebuilt, not a crash
    assert Gazetteer.load(tmp_path).source == "libraries"
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["sources"]["zipcodes"] = "0.0"  # a library upgrade: rebuilt
    cache.write_text(json.dumps(data), encoding="utf-8")
    assert Gazetteer.load(tmp_path).source == "libraries"


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_places_or_a_query_error(gazetteer: Gazetteer, text: str) -> None:
    try:
        places = gazetteer.search(text, limit=5)
    except QueryError:
        return
    assert len(places) <= 5
    assert all(-90 <= p.lat <= 90 and -180 <= p.lon <= 180 for p in places)
