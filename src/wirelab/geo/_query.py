"""Free-text place queries (sans-I/O): validate, normalise and split an address.

No sockets, no data: this module turns ``"207 N. Defiance St, Archbold, OH 43502"`` into
parts (``["207 N. Defiance St", "Archbold", "OH"]``) and a postcode (``"43502"``); the
gazetteer decides which part is a city, a state or a country. Rules:

* the text must be non-empty after trimming, at most :data:`MAX_QUERY_CHARS` characters,
  and free of control characters (a query is one line of text) and of lone surrogates
  (which is how Python hands over command-line bytes that are not UTF-8);
* Unicode is normalised to NFC and runs of white space collapse to one space;
* a US ZIP code (``43502`` or ``43502-1234``) standing alone in the last two parts is taken
  out as the postcode (ZIP+4 is reduced to its five digits);
* :func:`fold` gives the comparison key of a name: accents removed, case folded,
  punctuation dropped (``"St. Louis"`` and ``"st louis"`` match).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from wirelab.errors import ConfigError

__all__ = ["MAX_PARTS", "MAX_QUERY_CHARS", "ParsedQuery", "QueryError", "fold", "parse_query"]

#: Longest query accepted, in characters. Real addresses are far shorter; the limit keeps
#: each lookup cheap and gives a 10 kB query a clear error instead of a slow search.
MAX_QUERY_CHARS = 256

#: Most comma-separated parts considered (street, city, county, state, country ...).
MAX_PARTS = 8

_ZIP = re.compile(r"(?<![\w-])([0-9]{5})(?:-[0-9]{4})?(?![\w-])")
_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[.'\u2019`]")
_SEPARATORS = re.compile(r"[-_/\\()\[\]\"]+")


class QueryError(ConfigError):
    """The query is empty, too long, or not one line of text (a bad argument)."""


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into parts, most specific first, and its postcode if it had one."""

    text: str
    parts: tuple[str, ...]
    postcode: str | None = None


def fold(text: str) -> str:
    """The comparison key of a name: no accents, case folded, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = _PUNCT.sub("", plain.casefold())
    plain = _SEPARATORS.sub(" ", plain)
    return _SPACES.sub(" ", plain).strip()


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise QueryError("the query must be text")
    if len(text) > MAX_QUERY_CHARS * 4:  # cheap early refusal before any normalising work
        raise QueryError(f"the query is too long (over {MAX_QUERY_CHARS} characters)")
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        raise QueryError("the query is not valid text (bytes that are not UTF-8?)")
    text = unicodedata.normalize("NFC", text).replace("\t", " ")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise QueryError("the query contains control characters")
    text = _SPACES.sub(" ", text).strip()
    if not text:
        raise QueryError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is too long (over {MAX_QUERY_CHARS} characters)")
    return text


def parse_query(text: str) -> ParsedQuery:
    """Validate and split ``text``.

    Raises:
        QueryError: empty, too long, or containing control characters.
    """
    cleaned = _clean(text)
    parts = [p.strip() for p in cleaned.split(",")]
    parts = [p for p in parts if p and fold(p)]
    if not parts:
        raise QueryError("the query has no words")
    parts = parts[:MAX_PARTS]
    postcode = None
    for index in range(len(parts) - 1, max(-1, len(parts) - 3), -1):
        match = _ZIP.search(parts[index])
        if match is None:
            continue
        postcode = match.group(1)
        rest = (parts[index][: match.start()] + parts[index][match.end() :]).strip()
        if rest:
            parts[index] = _SPACES.sub(" ", rest)
        else:
            del parts[index]
        break
    return ParsedQuery(cleaned, tuple(parts), postcode)
