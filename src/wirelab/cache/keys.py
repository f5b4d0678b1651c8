"""memcached keys and values: what the text protocol allows, and our policy for the rest.

memcached's text protocol (``doc/protocol.txt`` in the memcached sources) says a key is at
most 250 bytes and holds no whitespace or control characters; an item is at most the server's
item size limit, 1 MiB by default (``-I 1m``). The book's ``squares.py`` never met these
limits because its keys were ``sq:<n>``; a real application's keys come from users.

Our policy, in one place:

* a key that is printable ASCII, without spaces, and fits in 250 bytes (namespace included)
  is sent as it is, so it reads the same in ``memcached-tool`` dumps;
* any other key (spaces, control characters, non-ASCII, too long, or starting with ``#``) is
  **hashed transparently**: it becomes ``<namespace>#sha256:<64 hex digits>``. Because every
  literal key that starts with ``#`` is hashed too, two different keys never map to the same
  memcached key (short of a SHA-256 collision);
* with ``strict=True`` such a key is refused with :class:`~wirelab.errors.LocalProtocolError`
  instead, for callers who want to see their keys unchanged on the server;
* a value over :data:`MAX_VALUE_BYTES` is refused before it is sent.
"""

from __future__ import annotations

import hashlib

from wirelab.errors import LocalProtocolError

__all__ = ["HASHED_PREFIX", "MAX_KEY_BYTES", "MAX_VALUE_BYTES", "check_value", "memcached_key"]

#: Longest key memcached accepts (protocol.txt: "the length limit of a key is set at 250").
MAX_KEY_BYTES = 250

#: memcached's default item size limit (``-I 1m``); key and header must fit in it too, so a
#: value just under this size can still be refused by the server (SERVER_ERROR).
MAX_VALUE_BYTES = 1 << 20

#: What a hashed key starts with, after the namespace.
HASHED_PREFIX = "#sha256:"


def _plain(key: bytes) -> bool:
    """True for printable ASCII without spaces (0x21-0x7E), the keys memcached takes as is."""
    return all(0x21 <= b <= 0x7E for b in key)


def memcached_key(key: str | bytes, *, namespace: str = "", strict: bool = False) -> bytes:
    """Return the key to send to memcached for ``key`` under ``namespace``.

    Args:
        key: the application's key (text is encoded as UTF-8).
        namespace: a prefix that keeps one application's keys apart (``"sq:"``); it must be
            plain printable ASCII itself.
        strict: refuse keys that would need hashing instead of hashing them.

    Raises:
        LocalProtocolError: an empty key, a namespace memcached cannot take, or (``strict``)
            a key with spaces, control or non-ASCII characters, or over 250 bytes.
    """
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    prefix = namespace.encode("ascii", "replace")
    if namespace and not _plain(prefix):
        raise LocalProtocolError(f"cache namespace {namespace!r} must be printable ASCII")
    if len(prefix) + len(HASHED_PREFIX) + 64 > MAX_KEY_BYTES:
        raise LocalProtocolError(f"cache namespace {namespace!r} is too long")
    if not raw:
        raise LocalProtocolError("an empty cache key")
    full = prefix + raw
    if _plain(raw) and not raw.startswith(b"#") and len(full) <= MAX_KEY_BYTES:
        return full
    if strict:
        if len(full) > MAX_KEY_BYTES:
            raise LocalProtocolError(
                f"cache key is {len(full)} bytes; memcached allows at most {MAX_KEY_BYTES}"
            )
        raise LocalProtocolError(
            f"cache key {key!r} has spaces, control or non-ASCII characters "
            "(memcached keys cannot; use strict=False to hash such keys)"
        )
    digest = hashlib.sha256(raw).hexdigest()
    return prefix + HASHED_PREFIX.encode() + digest.encode()


def check_value(value: bytes, *, limit: int = MAX_VALUE_BYTES) -> bytes:
    """Return ``value`` if memcached can store it, else raise.

    Raises:
        LocalProtocolError: the value is larger than ``limit`` (1 MiB by default).
    """
    if len(value) > limit:
        raise LocalProtocolError(
            f"cache value is {len(value):,} bytes; memcached stores at most {limit:,} "
            "per item (its -I limit): split it or store it elsewhere"
        )
    return value
