"""Properties of the LIST line parser (the one FTP parser we own; ftplib parses the rest)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wirelab.ftp.client import RemoteEntry, parse_list_line

NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/"),
    min_size=1,
    max_size=40,
).filter(lambda n: n.strip() == n and n not in (".", "..") and " -> " not in n)


@given(st.text(max_size=300))
def test_any_line_parses_or_is_none(line: str) -> None:
    entry = parse_list_line(line)
    assert entry is None or entry.kind in ("file", "dir", "link")


@given(NAMES, st.sampled_from("-dl"), st.integers(0, 10**12))
def test_unix_lines_round_trip(name: str, kind: str, size: int) -> None:
    target = " -> ../elsewhere" if kind == "l" else ""
    line = f"{kind}rwxr-xr-x    2 owner    group {size:>12} Mar 14  1994 {name}{target}"
    expected = {"-": "file", "d": "dir", "l": "link"}[kind]
    assert parse_list_line(line) == RemoteEntry(name, expected, size)
