"""Chapter 3 with the book's own programs: transcripts of the bytes, in both directions.

The peers (``book_tcp.py``) behave byte for byte like the book's ``tcp_sixteen.py`` and
``tcp_deadlock.py``:

* our ``wirelab tcp client`` and ``wirelab tcp deadlock`` against the book's servers must send
  exactly the book's bytes (``Hi there, server``; ``capitalize this!`` repeated, then a
  half-close) and take the book's answers;
* the book's clients against our lab servers must get exactly the book's answers;
* the book's bugs our side meets: its sixteen server dies on a connection that closes early
  (ours keeps serving, and our client reports the dead one in one line); its deadlock client
  has no timeout (our server's idle timeout ends the deadlock it walks into).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.conftest import run_wirelab
from tests.interop.book_process import book_client, book_server
from tests.interop.book_wire import joined, kinds, read_transcript
from wirelab.lab.state import ServiceView
from wirelab.net.server import ServerThread
from wirelab.tcp.server import UpperSettings, open_upper_server

CHUNK = b"capitalize this!"


def test_our_client_against_the_book_sixteen_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_tcp.py", "tcp_sixteen.py", "server", "127.0.0.1", "-p", "0", transcript=wire
    ) as peer:
        done = run_wirelab("tcp", "client", "127.0.0.1", "-p", str(peer.port))
    assert done.returncode == 0, done.stderr
    assert "The server said b'Farewell, client'" in done.stdout
    events = read_transcript(wire)
    assert kinds(events) == ["accept", "recv", "send", "close"]
    assert joined(events, "recv") == b"Hi there, server"
    assert joined(events, "send") == b"Farewell, client"
    assert "Incoming sixteen-octet message: b'Hi there, server'" in peer.stdout


def test_book_sixteen_client_against_our_server(tmp_path: Path, lab_tcp: ServiceView) -> None:
    wire = tmp_path / "client.jsonl"
    host, port = lab_tcp.endpoint("sixteen").sockaddr
    done = book_client(
        "book_tcp.py", "tcp_sixteen.py", "client", host, "-p", str(port), transcript=wire
    )
    assert done.returncode == 0, done.stderr
    assert "The server said b'Farewell, client'" in done.stdout
    events = read_transcript(wire)
    assert kinds(events) == ["send", "recv", "close"]
    assert joined(events, "send") == b"Hi there, server"
    assert joined(events, "recv") == b"Farewell, client"


def test_an_early_close_kills_the_book_server_not_ours(
    tmp_path: Path, lab_tcp: ServiceView
) -> None:
    # The book's server raises EOFError out of its loop on a connection that sends nothing.
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_tcp.py", "tcp_sixteen.py", "server", "127.0.0.1", "-p", "0", transcript=wire
    ) as peer:
        socket.create_connection(("127.0.0.1", peer.port), timeout=5).close()
        assert peer.process.wait(10) != 0
        done = run_wirelab("tcp", "client", "127.0.0.1", "-p", str(peer.port))
    assert "EOFError" in peer.stderr
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0], done.stderr
    # Ours logs it and goes on serving: the book's client is answered right after.
    host, port = lab_tcp.endpoint("sixteen").sockaddr
    socket.create_connection((host, port), timeout=5).close()
    after = book_client(
        "book_tcp.py", "tcp_sixteen.py", "client", host, "-p", str(port), transcript=tmp_path / "c"
    )
    assert after.returncode == 0 and "The server said b'Farewell, client'" in after.stdout


def test_our_deadlock_client_against_the_book_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_tcp.py", "tcp_deadlock.py", "server", "127.0.0.1", "-p", "0", transcript=wire
    ) as peer:
        done = run_wirelab("tcp", "deadlock", "127.0.0.1", "1000", "-p", str(peer.port), "--json")
        deadline = time.monotonic() + 5
        while "close" not in kinds(read_transcript(wire)) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "halfclose" and report["verified"] is True
    assert report["received"] == report["bytecount"] == 1008
    events = read_transcript(wire)
    assert joined(events, "recv") == CHUNK * 63  # rounded up to 16, as the book's
    assert joined(events, "send") == CHUNK.upper() * 63
    assert kinds(events)[0] == "accept" and kinds(events)[-2:] == ["eof", "close"]


def test_book_deadlock_client_against_our_server(tmp_path: Path, lab_tcp: ServiceView) -> None:
    wire = tmp_path / "client.jsonl"
    host, port = lab_tcp.endpoint("upper").sockaddr
    done = book_client(
        "book_tcp.py", "tcp_deadlock.py", "client", host, "1000", "-p", str(port), transcript=wire
    )
    assert done.returncode == 0, done.stderr
    assert "The first data received says b'CAPITALIZE THIS!" in done.stdout
    assert "1008 bytes received" in done.stdout
    events = read_transcript(wire)
    assert kinds(events) == ["send", "shutdown_wr", "recv", "eof", "close"]
    assert joined(events, "send") == CHUNK * 63
    assert joined(events, "recv") == CHUNK.upper() * 63


def test_our_idle_timeout_ends_the_book_clients_deadlock() -> None:
    """The book's deadlock client has no timeout: with 32 MiB it fills every buffer and would
    wait forever. Our server gives up on a peer that reads nothing for its idle timeout, so
    the book's client is released with an error instead of hanging."""
    settings = UpperSettings(idle_timeout=1.0)
    with ServerThread(lambda: open_upper_server("127.0.0.1", 0, settings)) as server:
        began = time.monotonic()
        done = book_client(
            "book_tcp.py",
            "tcp_deadlock.py",
            "client",
            "127.0.0.1",
            str(32 << 20),
            "-p",
            str(server.address[1]),
            transcript=None,  # two million 16-byte sends: no transcript, only the outcome
            timeout=60,
        )
        took = time.monotonic() - began
    assert done.returncode != 0
    assert "ConnectionResetError" in done.stderr or "BrokenPipeError" in done.stderr, done.stderr
    assert took < 30
