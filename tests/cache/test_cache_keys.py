"""Key and value policy, checked offline and against a real memcached."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.cache.cluster import CacheCluster
from wirelab.cache.daemon import MemcachedDaemon
from wirelab.cache.keys import MAX_KEY_BYTES, check_value, memcached_key
from wirelab.errors import LocalProtocolError


def _valid(wire: bytes) -> bool:
    return 0 < len(wire) <= MAX_KEY_BYTES and all(0x21 <= b <= 0x7E for b in wire)


def test_plain_keys_are_sent_as_they_are() -> None:
    assert memcached_key("sq:42") == b"sq:42"
    assert memcached_key("42", namespace="sq:") == b"sq:42"
    assert memcached_key(b"raw") == b"raw"


@pytest.mark.parametrize(
    "key", ["a key with spaces", "tab\there", "line\r\nbreak", "é", "x" * 251, "#sha256:abc"]
)
def test_awkward_keys_are_hashed(key: str) -> None:
    wire = memcached_key(key, namespace="ns:")
    assert wire.startswith(b"ns:#sha256:") and len(wire) == 3 + 8 + 64
    assert _valid(wire)


def test_a_key_that_fits_only_without_namespace_is_hashed() -> None:
    key = "k" * 248
    assert memcached_key(key) == key.encode()
    assert memcached_key(key, namespace="ns:").startswith(b"ns:#sha256:")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("a b", "spaces, control or non-ASCII"),
        ("x" * 251, "251 bytes; memcached allows at most 250"),
        ("", "empty"),
    ],
)
def test_strict_mode_refuses_clearly(key: str, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        memcached_key(key, strict=True)


def test_bad_namespace() -> None:
    with pytest.raises(LocalProtocolError, match="printable ASCII"):
        memcached_key("k", namespace="my space:")
    with pytest.raises(LocalProtocolError, match="too long"):
        memcached_key("k", namespace="n" * 200)


def test_values_over_one_mebibyte_are_refused() -> None:
    assert check_value(b"x" * (1 << 20)) == b"x" * (1 << 20)
    with pytest.raises(LocalProtocolError, match="1,048,577 bytes"):
        check_value(b"x" * ((1 << 20) + 1))


@given(st.text(min_size=1) | st.binary(min_size=1))
def test_any_key_becomes_a_valid_memcached_key(key: str | bytes) -> None:
    assert _valid(memcached_key(key, namespace="t:"))


@given(st.lists(st.text(min_size=1, max_size=300), min_size=2, max_size=20, unique=True))
def test_different_keys_never_share_a_memcached_key(keys: list[str]) -> None:
    wires = [memcached_key(k) for k in keys]
    assert len(set(wires)) == len(keys)


def test_awkward_keys_round_trip_through_real_memcached(memcached: MemcachedDaemon) -> None:
    keys = ["a key", "x" * 300, "ünïcødé", "#hash-looking", "ctrl\x01char", "plain"]
    with CacheCluster([memcached.address], namespace="keys:") as cache:
        for i, key in enumerate(keys):
            cache.set(key, str(i).encode())
        assert [cache.get(k) for k in keys] == [str(i).encode() for i in range(len(keys))]
