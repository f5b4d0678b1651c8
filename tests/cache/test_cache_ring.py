"""The ketama ring: agreement with an independent ketama implementation, and movement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from uhashring import HashRing

from wirelab.cache.ring import KetamaRing, ketama_hash
from wirelab.errors import ConfigError

KEYS = [f"key:{i}" for i in range(4000)]


@pytest.mark.parametrize(
    "nodes",
    [
        ["127.0.0.1:11211", "127.0.0.1:11212"],
        ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"],
        [f"cache{i}.example.com:11211" for i in range(7)],
    ],
)
def test_same_servers_as_uhashring_ketama(nodes: list[str]) -> None:
    theirs = HashRing(nodes, hash_fn="ketama")
    ours = KetamaRing(nodes)
    assert [ours.node_for(k) for k in KEYS] == [theirs.get_node(k) for k in KEYS]


def test_weights_agree_with_uhashring_and_double_the_share() -> None:
    weights = {"a:1": 2, "b:1": 1, "c:1": 1}
    theirs = HashRing({n: {"weight": w} for n, w in weights.items()}, hash_fn="ketama")
    ours = KetamaRing(weights, weights=weights)
    placed = [ours.node_for(k) for k in KEYS]
    assert placed == [theirs.get_node(k) for k in KEYS]
    assert placed.count("a:1") > 1.5 * placed.count("b:1")


def test_known_position() -> None:
    # MD5("hello") = 5d41402a...; the first four bytes read little-endian.
    assert ketama_hash("hello") == 0x2A40415D


def test_removing_a_node_moves_only_its_keys() -> None:
    nodes = [f"s{i}:11211" for i in range(5)]
    ring = KetamaRing(nodes)
    before = {k: ring.node_for(k) for k in KEYS}
    ring.remove("s2:11211")
    after = {k: ring.node_for(k) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert all(before[k] == "s2:11211" for k in moved)
    assert len(moved) == sum(1 for v in before.values() if v == "s2:11211")


def test_adding_a_node_moves_about_one_in_n_plus_one() -> None:
    ring = KetamaRing([f"s{i}:11211" for i in range(4)])
    before = [ring.node_for(k) for k in KEYS]
    ring.add("s4:11211")
    after = [ring.node_for(k) for k in KEYS]
    moved = [b for b, a in zip(before, after, strict=True) if a != b]
    assert 0.12 < len(moved) / len(KEYS) < 0.3  # ideal 1/5
    assert all(a == "s4:11211" for b, a in zip(before, after, strict=True) if a != b)


def test_empty_ring_and_unknown_node() -> None:
    ring = KetamaRing()
    with pytest.raises(ConfigError, match="no server"):
        ring.node_for("x")
    with pytest.raises(ConfigError, match="not on the ring"):
        ring.remove("x:1")
    with pytest.raises(ConfigError, match="at least 1"):
        ring.add("x:1", weight=0)


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6, unique=True), st.text())
def test_every_key_lands_on_a_ring_node(nodes: list[str], key: str) -> None:
    assert KetamaRing(nodes).node_for(key) in nodes
