"""Chapter 5 with the book's own programs: transcripts of the bytes, in both directions.

The peers (``book_framing.py``) behave byte for byte like the book's ``streamer.py`` and
``blocks.py``. Their servers half-close at once and only read; their clients shut down their
reading side and never read. So:

* our ``wirelab stream client`` and ``wirelab blocks client`` against the book's servers must
  send exactly the book's bytes (three Zen lines; three blocks with no newline and the empty
  block) and succeed when no summary comes, saying nothing was verified;
* the book's clients against our servers must be read in full (our servers' summaries are
  sent, but the book's clients never read them);
* the book's blocks server dies on a connection that closes before a block; ours keeps
  serving, and our client reports the dead one in one line.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.interop.book_process import book_client, book_server
from tests.interop.book_wire import joined, kinds, read_transcript
from wirelab.data.blocks import open_blocks_server
from wirelab.data.stream import open_stream_server
from wirelab.net.server import ServerThread

ZEN_LINES = (
    b"Beautiful is better than ugly.\n"
    b"Explicit is better than implicit.\n"
    b"Simple is better than complex.\n"
)
BOOK_BLOCKS = (
    b"Beautiful is better than ugly.",
    b"Explicit is better than implicit.",
    b"Simple is better than complex.",
)
#: The blocks the book's client sends, as they cross the wire, and the empty end block.
FRAMED = b"".join(struct.pack("!I", len(b)) + b for b in (*BOOK_BLOCKS, b""))


def _wait_for(predicate: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_our_stream_client_against_the_book_streamer_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_framing.py", "streamer.py", "server", transcript=wire, env={"BOOK_PORT": "0"}
    ) as peer:
        done = run_wirelab("stream", "client", "127.0.0.1", "-p", str(peer.port), "--json")
        assert peer.wait() == 0, peer.stderr
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is False and report["server_received"] is None
    assert report["sent"] == len(ZEN_LINES)
    events = read_transcript(wire)
    assert kinds(events) == ["accept", "shutdown_wr", "recv", "eof", "close"]
    assert joined(events, "recv") == ZEN_LINES
    assert "Done receiving the message; it says:\nBeautiful is better than ugly." in peer.stdout


def test_our_stream_client_says_nothing_was_verified(tmp_path: Path) -> None:
    with book_server(
        "book_framing.py",
        "streamer.py",
        "server",
        transcript=tmp_path / "w",
        env={"BOOK_PORT": "0"},
    ) as peer:
        done = run_wirelab("stream", "client", "127.0.0.1", "-p", str(peer.port))
        peer.wait()
    assert done.returncode == 0, done.stderr
    assert "without a summary (as the book's does): nothing verified" in done.stdout


def test_book_streamer_client_against_our_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.data")
    wire = tmp_path / "client.jsonl"
    with ServerThread(lambda: open_stream_server("127.0.0.1", 0)) as server:
        port = str(server.address[1])
        done = book_client(
            "book_framing.py", "streamer.py", "client", transcript=wire, env={"BOOK_PORT": port}
        )
        _wait_for(lambda: "end of file after" in caplog.text)
    assert done.returncode == 0, done.stderr
    events = read_transcript(wire)
    assert kinds(events) == ["shutdown_rd", "send", "close"]
    assert joined(events, "send") == ZEN_LINES
    assert f"end of file after {len(ZEN_LINES)} bytes" in caplog.text  # read in full


def test_our_blocks_client_against_the_book_blocks_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_framing.py", "blocks.py", "server", transcript=wire, env={"BOOK_PORT": "0"}
    ) as peer:
        done = run_wirelab("blocks", "client", "127.0.0.1", "-p", str(peer.port), "--json")
        assert peer.wait() == 0, peer.stderr
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is False and report["server_received"] is None
    assert report["sent_blocks"] == 3 and report["sent_bytes"] == 93
    events = read_transcript(wire)
    assert kinds(events) == ["accept", "shutdown_wr", "recv", "close"]
    assert joined(events, "recv") == FRAMED  # the book's blocks, no newline added
    assert peer.stdout.count("Message says:") == 3
    assert "Message says: b'Simple is better than complex.'" in peer.stdout


def test_book_blocks_client_against_our_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wirelab.data")
    wire = tmp_path / "client.jsonl"
    with ServerThread(lambda: open_blocks_server("127.0.0.1", 0)) as server:
        port = str(server.address[1])
        done = book_client(
            "book_framing.py", "blocks.py", "client", transcript=wire, env={"BOOK_PORT": port}
        )
        _wait_for(lambda: "then the end block" in caplog.text)
    assert done.returncode == 0, done.stderr
    events = read_transcript(wire)
    assert kinds(events) == ["shutdown_rd", "send", "close"]
    assert joined(events, "send") == FRAMED
    assert "3 blocks, 93 bytes, then the end block" in caplog.text


def test_an_empty_connection_kills_the_book_blocks_server_not_ours(tmp_path: Path) -> None:
    with book_server(
        "book_framing.py", "blocks.py", "server", transcript=tmp_path / "s", env={"BOOK_PORT": "0"}
    ) as peer:
        socket.create_connection(("127.0.0.1", peer.port), timeout=5).close()
        assert peer.wait() != 0
        done = run_wirelab("blocks", "client", "127.0.0.1", "-p", str(peer.port))
    assert "EOFError" in peer.stderr
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0], done.stderr
    with ServerThread(lambda: open_blocks_server("127.0.0.1", 0)) as server:
        socket.create_connection(server.address, timeout=5).close()
        ours = run_wirelab("blocks", "client", "127.0.0.1", "-p", str(server.address[1]), "--json")
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["verified"] is True  # ours answered, and the summary matched
