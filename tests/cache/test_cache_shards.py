"""The sharding comparison: the numbers the lesson rests on, and the chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirelab.cache.shards import ShardReport, compare_schemes, plot_report
from wirelab.cache.words import make_words
from wirelab.errors import ConfigError


def test_word_list_is_deterministic_and_skewed() -> None:
    words = make_words(3000)
    assert words == make_words(3000) and len(set(words)) == 3000
    assert words != make_words(3000, seed=9)
    firsts = [w[0] for w in words]
    assert firsts.count("s") > 10 * firsts.count("x")


@pytest.fixture(scope="module")
def report() -> ShardReport:
    return compare_schemes(make_words(6000), 4)


def test_movement_modulo_versus_consistent(report: ShardReport) -> None:
    by = {s.name: s for s in report.schemes}
    for name in ("python-hash", "md5-mod"):
        assert by[name].moved_on_add > 0.7  # ideal modulo: 4/5 of the keys move
        assert by[name].moved_on_remove > 0.65  # 3/4
    for name in ("ketama", "rendezvous"):
        assert 0.12 < by[name].moved_on_add < 0.28  # about 1/5
        assert 0.15 < by[name].moved_on_remove < 0.35  # about 1/4
    # Losing a node moves exactly that node's keys under consistent hashing.
    assert by["ketama"].moved_on_remove == pytest.approx(by["ketama"].counts["server3"] / 6000)


def test_distribution(report: ShardReport) -> None:
    by = {s.name: s for s in report.schemes}
    assert by["alphabetic"].imbalance > 1.25  # first letters are lopsided
    assert by["md5-mod"].imbalance < 1.1
    assert sum(by["ketama"].counts.values()) == 6000
    assert not by["python-hash"].stable and by["md5-mod"].stable
    doc = report.to_json()
    assert [s["name"] for s in doc["schemes"]] == [
        "alphabetic",
        "python-hash",
        "md5-mod",
        "ketama",
        "rendezvous",
    ]


def test_chart_is_a_png(report: ShardReport, tmp_path: Path) -> None:
    path = plot_report(report, tmp_path / "charts" / "shards.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        compare_schemes(["a"], 1)
    with pytest.raises(ConfigError, match="no keys"):
        compare_schemes([], 3)
    with pytest.raises(ConfigError, match="unknown scheme"):
        compare_schemes(["a"], 3, ["crc32"])
