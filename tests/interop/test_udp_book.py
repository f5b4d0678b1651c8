"""Chapter 2 with the book's own programs: transcripts of the datagrams, in both directions.

The peers (``book_udp.py``) behave byte for byte like the book's ``udp_local.py``,
``udp_remote.py``, ``udp_broadcast.py`` and ``big_sender.py``:

* our ``wirelab udp client`` against the book's servers must send the payload as it is (no
  request number) and take the book's ``Your data was N bytes long``, retrying through the
  ``udp_remote`` server's drops; ``--request-id`` must say the book's server does not echo IDs;
* the book's clients against our lab server must get exactly the book's reply;
* where the book's program has a bug our side meets (a server that dies on a non-ASCII
  datagram, a client with no timeout), the test shows our side coping.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import run_wirelab
from tests.interop.book_process import book_client, book_server
from tests.interop.book_wire import read_transcript
from wirelab.lab.state import ServiceView

BOOK_MESSAGE = b"This is another message"


def test_our_client_against_the_book_udp_remote_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    # Seed 7: the book's server drops the first two datagrams and answers the third.
    args = ("server", "127.0.0.1", "-p", "0")
    with book_server(
        "book_udp.py", "udp_remote.py", *args, transcript=wire, env={"BOOK_SEED": "7"}
    ) as peer:
        done = run_wirelab(
            "udp",
            "client",
            "127.0.0.1",
            "-p",
            str(peer.port),
            "-m",
            BOOK_MESSAGE.decode(),
            "--json",
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reply"] == "Your data was 23 bytes long"
    assert report["attempts"] == 3
    events = read_transcript(wire)
    received = [e.data for e in events if e.kind == "recv"]
    sent = [e.data for e in events if e.kind == "send"]
    assert received == [BOOK_MESSAGE] * 3  # our datagram, byte for byte, no request number
    assert sent == [b"Your data was 23 bytes long"]
    assert peer.stdout.count("Pretending to drop packet") == 2


def test_request_ids_against_the_book_server_say_it_does_not_echo_them(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    args = ("server", "127.0.0.1", "-p", "0")
    with book_server(
        "book_udp.py", "udp_remote.py", *args, transcript=wire, env={"BOOK_SEED": "5"}
    ) as peer:
        done = run_wirelab("udp", "client", "127.0.0.1", "-p", str(peer.port), "--request-id")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not number its replies" in lines[0], done.stderr
    (request,) = [e.data for e in read_transcript(wire) if e.kind == "recv"]
    assert re.fullmatch(rb"#[0-9]{1,10} The time is .+", request)  # opt-in: the ID is there


def test_book_udp_remote_client_against_our_server(tmp_path: Path, lab_udp: ServiceView) -> None:
    wire = tmp_path / "client.jsonl"
    host, port = lab_udp.address
    done = book_client(
        "book_udp.py", "udp_remote.py", "client", host, "-p", str(port), transcript=wire
    )
    assert done.returncode == 0, done.stderr
    assert "The server says 'Your data was 23 bytes long'" in done.stdout
    events = read_transcript(wire)
    assert [(e.kind, e.data) for e in events] == [
        ("send", BOOK_MESSAGE),
        ("recv", b"Your data was 23 bytes long"),
    ]
    assert events[1].peer == (host, port)


def test_our_client_against_the_book_udp_local_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_udp.py", "udp_local.py", "server", transcript=wire, env={"BOOK_PORT": "0"}
    ) as peer:
        done = run_wirelab("udp", "client", "127.0.0.1", "-p", str(peer.port), "-m", "hello")
    assert done.returncode == 0, done.stderr
    assert "replied 'Your data was 5 bytes long'" in done.stdout
    events = read_transcript(wire)
    assert [(e.kind, e.data) for e in events] == [
        ("recv", b"hello"),
        ("send", b"Your data was 5 bytes long"),
    ]


def test_book_udp_local_client_against_our_server(tmp_path: Path, lab_udp: ServiceView) -> None:
    """The book's client waits for an answer from anyone with no timeout; ours always comes."""
    wire = tmp_path / "client.jsonl"
    port = str(lab_udp.address[1])
    done = book_client(
        "book_udp.py", "udp_local.py", "client", transcript=wire, env={"BOOK_PORT": port}
    )
    assert done.returncode == 0, done.stderr
    (sent, reply) = read_transcript(wire)
    assert sent.kind == "send" and re.fullmatch(
        rb"This message was generated at [0-9 :.-]+", sent.data
    )
    assert reply.kind == "recv" and reply.data == b"Your data was %d bytes long" % len(sent.data)
    assert f"replied 'Your data was {len(sent.data)} bytes long'" in done.stdout


def test_the_book_server_dies_on_non_ascii_and_our_client_says_it_is_down(tmp_path: Path) -> None:
    """The book's server decodes every datagram as ASCII: 'Namárië' kills it. Our client
    does not hang or crash: it retries on the book's schedule and gives up in one line."""
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_udp.py", "udp_local.py", "server", transcript=wire, env={"BOOK_PORT": "0"}
    ) as peer:
        began = time.monotonic()
        done = run_wirelab("udp", "client", "127.0.0.1", "-p", str(peer.port), "-m", "Namárië")
        took = time.monotonic() - began
        peer.process.wait(5)
    assert "UnicodeDecodeError" in peer.stderr or peer.process.returncode != 0
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "seems to be down" in lines[0] or "ICMP port unreachable" in lines[0]
    assert took < 15
    assert next(e.data for e in read_transcript(wire) if e.kind == "recv") == "Namárië".encode()


def test_book_broadcast_client_reaches_our_listener(tmp_path: Path) -> None:
    wire = tmp_path / "client.jsonl"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    got: list[subprocess.CompletedProcess[str]] = []
    listener = threading.Thread(
        target=lambda: got.append(
            run_wirelab("udp", "listen", "0.0.0.0", "-p", port, "-t", "10", "--json")
        )
    )
    listener.start()
    try:
        for _ in range(40):  # resend until our listener has bound (a broadcast gets no reply)
            book_client(
                "book_udp.py",
                "udp_broadcast.py",
                "client",
                "127.255.255.255",
                "-p",
                port,
                transcript=wire,
            )
            listener.join(0.25)
            if not listener.is_alive():
                break
    finally:
        listener.join(15)
    (done,) = got
    assert done.returncode == 0, done.stderr
    heard = json.loads(done.stdout)
    assert heard[0]["text"] == "Broadcast datagram!"
    assert {e.data for e in read_transcript(wire)} == {b"Broadcast datagram!"}


def test_our_broadcast_reaches_the_book_broadcast_server(tmp_path: Path) -> None:
    wire = tmp_path / "server.jsonl"
    with book_server(
        "book_udp.py", "udp_broadcast.py", "server", "", "-p", "0", transcript=wire
    ) as peer:
        done = run_wirelab("udp", "broadcast", "127.255.255.255", "-p", str(peer.port))
        deadline = time.monotonic() + 5
        while not read_transcript(wire) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert done.returncode == 0, done.stderr
    assert [(e.kind, e.data) for e in read_transcript(wire)] == [("recv", b"Broadcast datagram!")]
    assert "says: 'Broadcast datagram!'" in peer.stdout


def test_book_big_sender_and_our_mtu_probe_agree(tmp_path: Path, lab_udp: ServiceView) -> None:
    host, port = lab_udp.address
    book = book_client(
        "book_udp.py", "big_sender.py", host, "-p", str(port), transcript=tmp_path / "w"
    )
    assert book.returncode == 0, book.stderr
    assert "Alas, the datagram did not make it" in book.stdout
    mtu = int(re.search(r"Actual MTU: (\d+)", book.stdout).group(1))  # type: ignore[union-attr]
    ours = run_wirelab("udp", "mtu", host, "-p", str(port), "--json")
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["mtu"] == mtu
