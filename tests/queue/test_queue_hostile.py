"""Issue 11, item 5: no peer's garbage can make the pythagoras service leave a request unanswered.

Before the fix, 64 KiB of random bytes on one raw TCP connection made the *next* legitimate
REQ go unanswered (10 of 10 tries): libzmq's REP socket parsed the garbage as ZMTP 1.0
frames and, when that connection's pipe was already closing, dropped a malformed envelope
without resetting its state, so it swallowed the next client's envelope and its reply.
Each variant below is sent on a fresh raw connection, then a real REQ client must be
answered within 2 s; 10 times in a row, against our own service and the lab's.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Callable

import pytest
import zmq

from tests.queue import zmtp
from wirelab.lab.state import ServiceView
from wirelab.queue._codec import MAX_MESSAGE
from wirelab.queue.pythagoras import split_envelope
from wirelab.queue.sockets import tcp_endpoint

Context = zmq.Context[zmq.Socket[bytes]]
Probe = Callable[[socket.socket, int], None]


def _garbage(sock: socket.socket, attempt: int) -> None:
    sock.sendall(random.Random(attempt).randbytes(64 * 1024))


def _greeting_then_multiframe(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock)
    sock.sendall(zmtp.message(b"", b"[3, 4]", b"extra"))


def _greeting_then_empty_frame(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock)
    sock.sendall(zmtp.message(b"", b""))


def _greeting_then_no_body(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock)
    sock.sendall(zmtp.message(b""))


def _greeting_then_no_delimiter(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock, b"DEALER")
    sock.sendall(zmtp.message(b"[3, 4]"))


def _greeting_then_huge_frame(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock)
    sock.sendall(zmtp.frame(b"", more=True))
    sock.sendall(zmtp.long_frame_header(MAX_MESSAGE + 1) + b"x" * 4096)


def _greeting_then_garbage(sock: socket.socket, attempt: int) -> None:
    zmtp.handshake(sock)
    sock.sendall(random.Random(attempt).randbytes(64 * 1024))


def _garbage_then_half_close(sock: socket.socket, attempt: int) -> None:
    _garbage(sock, attempt + 100)
    sock.shutdown(socket.SHUT_WR)


PROBES: dict[str, Probe] = {
    "64KiB-random": _garbage,
    "greeting-multiframe": _greeting_then_multiframe,
    "greeting-empty-frame": _greeting_then_empty_frame,
    "greeting-no-body": _greeting_then_no_body,
    "greeting-no-delimiter": _greeting_then_no_delimiter,
    "greeting-then-random": _greeting_then_garbage,
    "greeting-huge-frame": _greeting_then_huge_frame,
    "random-half-close": _garbage_then_half_close,
}


def _ask(context: Context, endpoint: str, wait: float = 2.0) -> float | None:
    """Seconds a real REQ client waited for its answer, or None after ``wait``."""
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    began = time.monotonic()
    try:
        req.connect(endpoint)
        req.send(b'{"points": [[3, 4]]}')
        if not req.poll(int(wait * 1000)):
            return None
        assert req.recv() == b'{"sums":[25]}'
        return time.monotonic() - began
    finally:
        req.close()


def _hammer(context: Context, endpoint: str, probe: Probe) -> None:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    unanswered = []
    for attempt in range(10):
        with zmtp.open_raw(host, int(port)) as raw:
            with contextlib.suppress(OSError):  # the service may hang up on it: allowed
                probe(raw, attempt)
            time.sleep(0.05)  # let the service read it before the real client comes
            if _ask(context, endpoint) is None:
                unanswered.append(attempt)
    assert not unanswered, f"a real REQ went unanswered after tries {unanswered}"


@pytest.mark.parametrize("probe", list(PROBES), ids=list(PROBES))
def test_garbage_on_a_raw_connection_does_not_stick_the_rep_socket(
    context: Context, pythagoras: str, probe: str
) -> None:
    _hammer(context, pythagoras, PROBES[probe])


def test_garbage_does_not_stick_the_lab_service(context: Context, lab_queue: ServiceView) -> None:
    ep = lab_queue.endpoint("rep")
    _hammer(context, tcp_endpoint(ep.address, ep.port), _garbage)


def test_a_bad_request_from_a_raw_peer_gets_an_error_reply(pythagoras: str) -> None:
    """Every request gets a reply: a two-frame request is answered with an error, not dropped."""
    host, port = pythagoras.removeprefix("tcp://").rsplit(":", 1)
    with zmtp.open_raw(host, int(port)) as raw:
        zmtp.handshake(raw)
        raw.sendall(zmtp.message(b"", b"[3, 4]", b"extra"))
        delimiter, reply = zmtp.read_message(raw)
        assert delimiter == b""
        assert json.loads(reply) == {"error": "request must be one frame, not 2"}
        raw.sendall(zmtp.message(b""))
        assert zmtp.read_message(raw) == [b"", b'{"error": "request must be one frame, not 0"}']
        raw.sendall(zmtp.message(b"", b"[3, 4]"))  # and the same connection is still served
        assert zmtp.read_message(raw) == [b"", b"25"]


@pytest.mark.parametrize(
    ("frames", "envelope", "body"),
    [
        ([b"id", b"", b"req"], [b"id", b""], [b"req"]),
        ([b"id", b"hop", b"", b"a", b"b"], [b"id", b"hop", b""], [b"a", b"b"]),
        ([b"id", b"req"], [b"id", b""], [b"req"]),  # no delimiter: answered as if it had one
        ([b"id"], [b"id", b""], []),
        ([b"id", *[b"hop"] * 40, b"", b"req"], [b"id", b""], [*[b"hop"] * 40, b"", b"req"]),
    ],
)
def test_split_envelope(frames: list[bytes], envelope: list[bytes], body: list[bytes]) -> None:
    assert split_envelope(frames) == (envelope, body)
