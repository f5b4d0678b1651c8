"""Chapter 7 with the book's own programs: transcripts of the bytes, in both directions.

* Our ``wirelab zen client`` against servers that frame like the book's (``zen_peers``): it
  must ask one question at a time, each sent whole, and close when done; ``--error`` must
  cope with a server that has no limit; pipelining (opt-in) is shown failing clearly, in
  bounded time, against the book's framing, and working against asynchat's.
* The book's ``client.py`` (``zen_peers.book_client``) against every one of our
  architectures and the lab's endpoints: each answer must be exactly the book's bytes, with
  nothing added; its ``-e`` (half a question, then gone) must get nothing and leave the
  server serving.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import run_wirelab
from tests.interop.zen_peers import (
    APHORISMS,
    UNKNOWN,
    BookZenServer,
    Framing,
    Transcript,
    book_client,
)
from wirelab.lab.state import ServiceView
from wirelab.zen._common import RunningServer
from wirelab.zen._core import ZenConfig
from wirelab.zen.archs import ARCHS, start_server

LONG = 1035  # the length of the over-the-limit question `--error` sends


def _wait_closed(transcript: Transcript, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not transcript.closed_by_client and time.monotonic() < deadline:
        time.sleep(0.02)
    return transcript.closed_by_client


def _zen(*args: str, timeout: float = 60) -> tuple[int, list[str], str]:
    done = run_wirelab("zen", *args, timeout=timeout)
    return done.returncode, done.stdout.splitlines(), done.stderr


# --- our client, the book's servers --------------------------------------------------------


@pytest.mark.parametrize("framing", ["suffix", "terminator"])
def test_our_client_asks_a_book_server_one_whole_question_at_a_time(framing: Framing) -> None:
    with BookZenServer(framing) as server:
        code, lines, err = _zen("client", "127.0.0.1", "-p", str(server.address[1]))
        assert code == 0, err
        assert len(server.transcripts) == 1
        transcript = server.transcripts[0]
        assert _wait_closed(transcript), "our client did not close the connection"
    asked = [line.split("?")[0].encode() + b"?" for line in lines]
    assert sorted(asked) == sorted(APHORISMS)  # the three aphorisms, each once
    # The exact bytes, in order: question, its answer, question, its answer ...
    expected: list[tuple[str, bytes]] = []
    for question in asked:
        expected += [("c>s", question), ("s>c", APHORISMS[question])]
    assert transcript.chunks == expected
    assert lines == [f"{q.decode()} {APHORISMS[q].decode()}" for q in asked]


def test_our_client_error_mode_against_a_book_server_that_has_no_limit() -> None:
    with BookZenServer("suffix") as server:
        code, lines, err = _zen("client", "127.0.0.1", "-p", str(server.address[1]), "--error")
        assert code == 0, err
        transcript = server.transcripts[0]
        assert _wait_closed(transcript)
    # The book's server answers the long question as one more unknown aphorism, and stays open.
    assert lines == [
        "Ugly is better than? Error: unknown aphorism.",
        f"({LONG} bytes) Error: unknown aphorism.",
        "(anything more) (connection open)",
    ]
    sent = transcript.sent_by("c>s")
    assert sent.startswith(b"Ugly is better than?Beautiful xxx") and sent.endswith(b"x?")
    assert len(sent) == len(b"Ugly is better than?") + LONG
    assert transcript.sent_by("s>c") == UNKNOWN * 2


def test_pipelining_against_the_book_framing_fails_clearly_and_in_bounded_time() -> None:
    # Two questions in one read: the book's server answers one unknown aphorism and waits.
    with BookZenServer("suffix") as server:
        began = time.monotonic()
        code, _, err = _zen(
            "client", "127.0.0.1", "-p", str(server.address[1]), "--pipeline", "2", "-t", "1"
        )
        took = time.monotonic() - began
    assert code == 1
    assert "wirelab: error:" in err and "no answer from" in err and "1 unanswered" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert took < 10
    assert server.transcripts[0].sent_by("s>c") == UNKNOWN


def test_pipelining_works_against_the_book_asynchat_framing() -> None:
    # srv_legacy2's asynchat splits on every "?": a window of 300 gets 300 right answers.
    with BookZenServer("terminator") as server:
        code, lines, err = _zen(
            "client", "127.0.0.1", "-p", str(server.address[1]), "--pipeline", "300"
        )
    assert code == 0, err
    assert lines[-1] == "got 300 answers, in order, 0 wrong"


# --- the book's client, our servers --------------------------------------------------------


@pytest.fixture(params=list(ARCHS))
def ours(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with start_server(request.param, config=ZenConfig(idle_timeout=5.0, workers=2)) as server:
        yield server


def _check_book_run(address: tuple[str, int]) -> None:
    run = book_client(address)
    # Byte for byte: each answer alone, exactly the book's, nothing before, after or between.
    expected: list[tuple[str, bytes]] = []
    for question in run.order:
        expected += [("c>s", question), ("s>c", APHORISMS[question])]
    assert run.transcript.chunks == expected
    assert run.printed == [f"{q!r} {APHORISMS[q]!r}" for q in run.order]


def test_book_client_gets_exactly_the_book_bytes_from_each_architecture(
    ours: RunningServer,
) -> None:
    _check_book_run(ours.address)


def test_book_client_cause_error_gets_nothing_and_the_server_goes_on(
    ours: RunningServer,
) -> None:
    # client.py -e: the first aphorism without its "?", then the client is gone.
    run = book_client(ours.address, cause_error=True)
    assert run.transcript.sent_by("c>s") == b"Beautiful is better than"
    # The book's servers send nothing to it and close; ours must do the same ...
    with socket.create_connection(ours.address, timeout=10) as sock:
        sock.sendall(b"Beautiful is better than")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(4096) == b""
    # ... and keep answering everyone else.
    _check_book_run(ours.address)


@pytest.mark.parametrize("endpoint", ["zen", "inetd-nowait", "inetd-wait"])
def test_book_client_against_the_lab(lab_zen: ServiceView, endpoint: str) -> None:
    _check_book_run(lab_zen.endpoint(endpoint).sockaddr)
