"""Test-only peers that behave as the stages of the book's ``queuepi.py`` do (chapter 8).

Written from the book's observable behaviour, not its code, each records what crossed the
wire so a test can check the exact messages:

* the **bitsource** binds PUB and publishes 24-character strings of ``0``/``1`` (a random
  24-bit number; x is the characters at even positions, y those at odd ones), over and over,
  with no regard for who has subscribed yet (the book's PUB socket);
* the **pythagoras** service binds REP, reads a JSON array and answers the JSON number that
  is the sum of the squares of its numbers (pyzmq's ``send_json``: Python's default JSON);
* the **judge** subscribes to ``01``, ``10`` and ``11``, sends ``[x, y]`` for each point
  (REQ), and pushes ``Y`` when the answer is below 2**24, else ``N``;
* the **tally** binds PULL and counts ``Y`` as inside.

Unlike the book's stages, each stops when told to and never blocks without a timeout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import zmq

Context = zmq.Context[zmq.Socket[bytes]]
POLL_MS = 20


def book_point(n: int) -> bytes:
    """The book's message for the 24-bit number ``n``."""
    return format(n, "024b").encode()


def coordinates(message: bytes) -> tuple[int, int]:
    """x and y of one of the book's points, as the book's judge reads them."""
    text = message.decode()
    return int(text[::2], 2), int(text[1::2], 2)


class _Peer:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def _guarded(self) -> None:
        try:
            self.serve()
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def serve(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.thread = threading.Thread(target=self._guarded, name=f"book-{type(self).__name__}")
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        assert not self.errors, self.errors


@contextmanager
def running(peer: _Peer) -> Iterator[_Peer]:
    peer.start()
    try:
        yield peer
    finally:
        peer.close()


class BookPythagoras(_Peer):
    """REP: ``[numbers]`` in, their sum of squares out; records every request's bytes."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.sock = context.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self.replies: list[bytes] = []

    def serve(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.sock.poll(POLL_MS):
                    continue
                request = self.sock.recv()
                reply = json.dumps(sum(n * n for n in json.loads(request))).encode()
                self.requests.append(request)
                self.replies.append(reply)
                self.sock.send(reply)
        finally:
            self.sock.close()


class BookBitsource(_Peer):
    """PUB: publishes ``numbers`` as the book's strings, round and round, until stopped."""

    def __init__(self, context: Context, numbers: Sequence[int]) -> None:
        super().__init__()
        self.sock = context.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.messages = [book_point(n) for n in numbers]

    def serve(self) -> None:
        try:
            while not self.stop.is_set():
                for message in self.messages:
                    self.sock.send(message)
                self.stop.wait(0.005)
        finally:
            self.sock.close()


class BookTally(_Peer):
    """PULL: records every verdict."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.sock = context.socket(zmq.PULL)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.verdicts: list[bytes] = []

    def serve(self) -> None:
        try:
            while not self.stop.is_set():
                if self.sock.poll(POLL_MS):
                    self.verdicts.append(self.sock.recv())
        finally:
            self.sock.close()


class BookJudge(_Peer):
    """SUB ``01``/``10``/``11`` -> REQ ``[x, y]`` -> PUSH ``Y``/``N``; records each step."""

    def __init__(self, context: Context, pub: str, pythagoras: str, pull: str) -> None:
        super().__init__()
        self.sub = context.socket(zmq.SUB)
        self.req = context.socket(zmq.REQ)
        self.push = context.socket(zmq.PUSH)
        for sock in (self.sub, self.req, self.push):
            sock.setsockopt(zmq.LINGER, 0)
        for prefix in (b"01", b"10", b"11"):
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self.sub.connect(pub)
        self.req.connect(pythagoras)
        self.push.connect(pull)
        self.points: list[bytes] = []
        self.replies: list[bytes] = []
        self.verdicts: list[bytes] = []

    def serve(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.sub.poll(POLL_MS):
                    continue
                bits = self.sub.recv()
                x, y = coordinates(bits)
                self.req.send(json.dumps([x, y]).encode())
                while not self.req.poll(POLL_MS):
                    if self.stop.is_set():
                        return
                reply = self.req.recv()
                verdict = b"Y" if json.loads(reply) < 2**24 else b"N"
                self.push.send(verdict)
                self.points.append(bits)
                self.replies.append(reply)
                self.verdicts.append(verdict)
        finally:
            for sock in (self.sub, self.req, self.push):
                sock.close()
