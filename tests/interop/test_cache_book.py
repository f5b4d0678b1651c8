"""Chapter 8: our squares and the book's squares.py warm the same memcached.

The peer below speaks memcached's text protocol as python-memcached (the book's ``memcache``
module) does for ``squares.py``, written from that behaviour: ``get sq:<n>``, and on a miss
``set sq:<n> 2 0 <length>`` with the square's decimal digits (flags 2 marks an integer, so
the client reads an ``int`` back; flags 0 would give it bytes). Our side is the real CLI,
``wirelab cache squares --namespace ''``, against a real memcached daemon.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import run_wirelab
from wirelab.cache.daemon import MemcachedDaemon
from wirelab.errors import ServiceUnavailable


@pytest.fixture
def memcached() -> Iterator[MemcachedDaemon]:
    try:
        daemon = MemcachedDaemon(port=0)
    except ServiceUnavailable as exc:  # pragma: no cover - `make` installs memcached
        if os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with daemon:
        yield daemon


class BookClient:
    """python-memcached's wire behaviour for the two calls squares.py makes."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.sent: list[bytes] = []

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def _send(self, data: bytes) -> None:
        self.sent.append(data)
        self.sock.sendall(data)

    def get(self, key: str) -> int | bytes | None:
        self._send(f"get {key}\r\n".encode())
        line = self.file.readline()
        if line == b"END\r\n":
            return None
        _, name, flags, length = line.split()
        assert name == key.encode()
        data = self.file.read(int(length) + 2)[:-2]
        assert self.file.readline() == b"END\r\n"
        return int(data) if int(flags) & 2 else data

    def set(self, key: str, value: int) -> bool:
        digits = str(value).encode()
        self._send(f"set {key} 2 0 {len(digits)}\r\n".encode() + digits + b"\r\n")
        return self.file.readline() == b"STORED\r\n"


def _squares(daemon: MemcachedDaemon, *args: str) -> dict[str, object]:
    host, port = daemon.address
    done = run_wirelab("cache", "squares", "-s", f"{host}:{port}", "--namespace", "",
                       "--delay", "0", "--seed", "3", "--json", *args)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def test_the_book_client_reads_what_our_squares_stored(memcached: MemcachedDaemon) -> None:
    report = _squares(memcached, "-r", "1", "-n", "200", "--max-n", "50")
    assert report["wrong"] == 0
    book = BookClient(*memcached.address)
    try:
        found = {n: book.get(f"sq:{n}") for n in range(51)}
    finally:
        book.close()
    stored = {n: v for n, v in found.items() if v is not None}
    assert len(stored) > 40  # 200 draws from 0..50 leave few numbers out
    assert all(v == n * n and type(v) is int for n, v in stored.items()), stored


def test_our_squares_read_what_the_book_client_stored(memcached: MemcachedDaemon) -> None:
    book = BookClient(*memcached.address)
    try:
        assert all(book.set(f"sq:{n}", n * n) for n in range(31))
        assert book.sent[0] == b"set sq:0 2 0 1\r\n0\r\n"
        assert book.get("sq:12") == 144
    finally:
        book.close()
    report = _squares(memcached, "-r", "2", "-n", "100", "--max-n", "30")
    rounds = report["rounds"]
    assert isinstance(rounds, list)
    # Every number was there already: all hits from the first lookup, every answer right.
    assert [r["hits"] for r in rounds] == [100, 100] and report["wrong"] == 0
