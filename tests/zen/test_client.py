"""The pipelining client sends and reads at once: no chapter 3 deadlock, a clear timeout.

Small socket buffers (set explicitly, which also turns Linux's autotuning off) make the
windows small enough that a client which wrote its whole window before reading would wait
for ever: the peer stops reading while its answers go unread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import Behaviour, run_wirelab
from wirelab.errors import Timeout
from wirelab.zen._core import ANSWERS, answer_for
from wirelab.zen.archs import start_server
from wirelab.zen.client import ZenClient, pipelined_questions

SMALL = 8192
RawServer = Callable[[Behaviour], tuple[str, int]]


def _small_client(address: tuple[str, int], timeout: float) -> ZenClient:
    client = ZenClient(*address, timeout=timeout)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    return client


def test_a_server_that_never_reads_gets_a_clear_timeout_in_bounded_time(
    raw_server: RawServer,
) -> None:
    done = threading.Event()

    def never_reads(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
        done.wait(15)

    address = raw_server(never_reads)
    questions = pipelined_questions(20_000)  # 500 KB: far more than the buffers hold
    try:
        with _small_client(address, timeout=1.0) as client:
            began = time.monotonic()
            with pytest.raises(Timeout, match="stopped reading our questions") as caught:
                client.ask(questions, pipeline=len(questions))
            took = time.monotonic() - began
    finally:
        done.set()
    assert 0.9 <= took < 5.0, f"gave up after {took:.1f} s, not about 1 s"
    assert "20000 question(s) unanswered" in str(caught.value)


def test_a_blocking_server_that_answers_as_it_reads_does_not_deadlock(
    raw_server: RawServer,
) -> None:
    # Chapter 3's server: answers each question with a blocking sendall before reading on.
    # Its answers fill our small receive window; it stops reading; a client still writing its
    # whole window (without reading) would block too, for ever.
    def answers_as_it_reads(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
        buffer = b""
        while data := conn.recv(4096):
            *questions, buffer = (buffer + data).split(b"?")
            for question in questions:
                conn.sendall(answer_for(question + b"?"))

    address = raw_server(answers_as_it_reads)
    questions = pipelined_questions(20_000)
    with _small_client(address, timeout=5.0) as client:
        exchanges = client.ask(questions, pipeline=len(questions))
    assert [e.answer.encode() for e in exchanges] == [ANSWERS[q] for q in questions]


@pytest.mark.parametrize("arch", ["selectors", "asyncore", "uvloop"])
def test_a_deep_pipeline_against_our_server(arch: str) -> None:
    # Our servers stop reading a client that has 64 KiB of answers unread: the same trap
    # (30,000 questions owe 210 KB of answers, three times what the server and buffers hold).
    questions = pipelined_questions(30_000)
    with start_server(arch) as server, _small_client(server.address, timeout=5.0) as client:
        exchanges = client.ask(questions, pipeline=len(questions))
    assert len(exchanges) == len(questions)
    assert [e.answer.encode() for e in exchanges] == [ANSWERS[q] for q in questions]


def test_cli_pipeline_against_a_server_that_never_reads_exits_1_in_bounded_time(
    raw_server: RawServer,
) -> None:
    done = threading.Event()
    address = raw_server(lambda conn: done.wait(20) and None)
    try:
        began = time.monotonic()
        run = run_wirelab(
            *("zen", "client", address[0], "-p", str(address[1])),
            *("--pipeline", "100000", "-t", "1"),
            timeout=30,
        )
        took = time.monotonic() - began
    finally:
        done.set()
    assert run.returncode == 1, run.stderr
    # All of it may fit in the kernel's buffers (then no answer came), or not (then the
    # server stopped reading): either way one line, and about a second after the last progress.
    assert run.stderr.startswith("wirelab: error: ") and run.stderr.count("\n") == 1
    assert "stopped reading our questions" in run.stderr or "no answer from" in run.stderr
    assert took < 15
