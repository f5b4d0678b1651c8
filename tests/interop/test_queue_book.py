"""Chapter 8 both ways: our ZeroMQ stages with stages that behave as the book's queuepi.py.

Each test checks the messages that crossed the wire (what the book's peer received and sent),
not only that a run finished: the book's 24-character points, ``[x, y]`` requests, JSON
number replies and ``Y``/``N`` verdicts, byte for byte.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from tests.conftest import run_wirelab
from tests.interop.queue_peers import (
    BookBitsource,
    BookJudge,
    BookPythagoras,
    BookTally,
    book_point,
    coordinates,
    running,
)
from wirelab.lab.state import ServiceView
from wirelab.queue.pipeline import run_pi
from wirelab.queue.pythagoras import serve_pythagoras
from wirelab.queue.sockets import tcp_endpoint

Context = zmq.Context[zmq.Socket[bytes]]
BOOK_POINT = re.compile(rb"[01]{24}")


@pytest.fixture
def context() -> Iterator[Context]:
    ctx: Context = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture
def our_pythagoras(context: Context) -> Iterator[str]:
    stop, ready, bound = threading.Event(), threading.Event(), []
    thread = threading.Thread(
        target=serve_pythagoras,
        args=(context, "tcp://127.0.0.1:*", stop),
        kwargs={"ready": lambda e: (bound.append(e), ready.set())},
        name="our-pythagoras",
    )
    thread.start()
    try:
        assert ready.wait(5)
        yield bound[0]
    finally:
        stop.set()
        thread.join(5)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- our client against the book's service -------------------------------------------------


def test_our_ask_against_the_book_pythagoras(context: Context) -> None:
    peer = BookPythagoras(context)
    with running(peer):
        done = run_wirelab("queue", "ask", "3", "4", "5", "12", "-e", peer.endpoint)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["3² + 4² = 25", "5² + 12² = 169"]
    assert peer.requests == [b"[3, 4]", b"[5, 12]"]  # exactly what the book's judge sends
    assert peer.replies == [b"25", b"169"]


# -- the book's client against our service ---------------------------------------------------


def test_the_book_judge_request_against_the_lab_pythagoras(
    context: Context, lab_queue: ServiceView
) -> None:
    ep = lab_queue.endpoint("rep")
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    try:
        req.connect(tcp_endpoint(ep.address, ep.port))
        for x, y in [(3, 4), (4095, 4095), (0, 0)]:
            req.send(json.dumps([x, y]).encode())  # pyzmq's send_json((x, y))
            assert req.poll(5000)
            assert req.recv() == str(x * x + y * y).encode()  # the book's send_json(sum)
    finally:
        req.close()


# -- our judge in the book's pipeline ------------------------------------------------------


def test_our_judge_in_the_book_pipeline(context: Context) -> None:
    """Book source, book pythagoras and book tally; `wirelab queue judge` in the middle."""
    rng = random.Random(8)
    numbers = [rng.getrandbits(24) for _ in range(300)]
    pythagoras, tally = BookPythagoras(context), BookTally(context)
    source = BookBitsource(context, numbers)
    command = [sys.executable, "-m", "wirelab", "queue", "judge", "--pub", source.endpoint,
               "--pull", tally.endpoint, "--pythagoras", pythagoras.endpoint,
               "--idle-exit", "1.5"]  # fmt: skip
    with running(pythagoras), running(tally), running(source):
        judge = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while len(tally.verdicts) < 600 and time.monotonic() < deadline:
                time.sleep(0.05)
            source.stop.set()  # no more points: the judge stops after --idle-exit
            _, err = judge.communicate(timeout=30)
        finally:
            if judge.poll() is None:
                judge.kill()
                judge.communicate()
    assert judge.returncode == 0, err
    assert len(tally.verdicts) >= 600, f"only {len(tally.verdicts)} verdicts"
    # What our judge sent pythagoras: the book's [x, y] of a published point not under 00.
    published = {coordinates(book_point(n)) for n in numbers}
    for request in pythagoras.requests:
        x, y = json.loads(request)
        assert request == f"[{x}, {y}]".encode()
        assert (x, y) in published and not (x < 2048 and y < 2048)
    # What it pushed the tally: Y or N, one per answered request, in order, each right.
    assert len(tally.verdicts) == len(pythagoras.replies)
    for verdict, reply in zip(tally.verdicts, pythagoras.replies, strict=True):
        assert verdict == (b"Y" if int(reply) < 2**24 else b"N")
    assert err.splitlines()[-1] == f"judged {len(tally.verdicts):,} points"


# -- the book's judge in our pipeline --------------------------------------------------------


def test_the_book_judge_in_our_pipeline(context: Context, our_pythagoras: str) -> None:
    """Our source and tally (the book's ports would do; free ones here), the book's judge."""
    pub, pull = _free_port(), _free_port()
    judge = BookJudge(context, f"tcp://127.0.0.1:{pub}", our_pythagoras, f"tcp://127.0.0.1:{pull}")
    with running(judge):
        result = run_pi(2000, ports={"pub": pub, "pull": pull}, judge=False, seed=5, timeout=10)
    assert result.tallied == 2000 and result.wire == "book"
    judged = 2000 - result.published["00"]
    # The book's judge read our points as the book's strings, under its three topics ...
    assert len(judge.points) == judged
    assert all(BOOK_POINT.fullmatch(p) and p[:2] != b"00" for p in judge.points)
    # ... got the book's JSON number for each from our pythagoras ...
    for point, reply in zip(judge.points, judge.replies, strict=True):
        x, y = coordinates(point)
        assert reply == str(x * x + y * y).encode()
    # ... and our tally counted its Y and N (always-yes, ours, said Y for every 00 point).
    assert result.inside == result.published["00"] + judge.verdicts.count(b"Y")
