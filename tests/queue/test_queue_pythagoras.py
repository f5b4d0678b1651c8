"""The pythagoras REP service, driven by plain pyzmq REQ sockets (not our pipeline)."""

from __future__ import annotations

import json
import threading

import pytest
import zmq

from wirelab.errors import ConnectError, RemoteProtocolError, Timeout
from wirelab.queue.pythagoras import ask_pythagoras, serve_pythagoras

Context = zmq.Context[zmq.Socket[bytes]]


def _request(context: Context, endpoint: str, *frames: bytes, wait: float = 5.0) -> bytes | None:
    req = context.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    try:
        req.connect(endpoint)
        req.send_multipart(list(frames))
        if not req.poll(int(wait * 1000)):
            return None
        return req.recv()
    finally:
        req.close()


def test_sums_of_squares(context: Context, pythagoras: str) -> None:
    reply = _request(context, pythagoras, b'{"points": [[3, 4], [4294967295, 4294967295]]}')
    assert reply is not None
    assert json.loads(reply) == {"sums": [25, 2 * 4294967295**2]}


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        ([b"{not json"], "not JSON"),
        ([b'{"points": [[1, 2, 3]]}'], "pair"),
        ([b'{"points": [[1, 2]]}', b"extra"], "one frame"),
        ([b"\xff\xfe"], "not JSON"),
    ],
)
def test_bad_requests_get_an_error_reply_and_the_service_carries_on(
    context: Context, pythagoras: str, frames: list[bytes], error: str
) -> None:
    reply = _request(context, pythagoras, *frames)
    assert reply is not None and error in json.loads(reply)["error"]
    assert _request(context, pythagoras, b'{"points": [[1, 1]]}') == b'{"sums":[2]}'


def test_an_oversized_message_drops_only_that_peer(context: Context, pythagoras: str) -> None:
    assert _request(context, pythagoras, b"x" * (5 << 20), wait=0.5) is None
    assert _request(context, pythagoras, b'{"points": [[2, 3]]}') == b'{"sums":[13]}'


def test_ask_pythagoras(context: Context, pythagoras: str) -> None:
    assert ask_pythagoras(context, pythagoras, [(5, 12), (3, 4)]) == [169, 25]
    assert ask_pythagoras(context, pythagoras, [(5, 12), (3, 4)], wire="batch") == [169, 25]
    with pytest.raises(RemoteProtocolError, match="refused the request"):
        ask_pythagoras(context, pythagoras, [(-1, 0)], wire="batch")
    with pytest.raises(RemoteProtocolError, match=r"refused the request: .*below 2\*\*64"):
        ask_pythagoras(context, pythagoras, [(2**64, 0)])


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (b"[3, 4]", b"25"),  # what the book's judge sends, and the book's service answers
        (b"[3,4]", b"25"),
        (b"[1, 2, 3]", b"14"),  # the book's service summed any sequence
        (b"[]", b"0"),
        (b"[-5]", b"25"),
        (b"[18446744073709551615, 0]", str((2**64 - 1) ** 2).encode()),
    ],
)
def test_the_book_request_gets_the_book_reply(
    context: Context, pythagoras: str, request_: bytes, reply: bytes
) -> None:
    assert _request(context, pythagoras, request_) == reply


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (b"[1.5, 2]", "integers below 2**64"),
        (b"[true]", "integers below 2**64"),
        (b"[18446744073709551616]", "integers below 2**64"),
        (b'"3, 4"', "must be [x, y]"),
        (b"[" + b"0," * 100_000 + b"0]", "the limit is 100000"),
    ],
)
def test_bad_book_requests_get_an_error_reply(
    context: Context, pythagoras: str, request_: bytes, error: str
) -> None:
    reply = _request(context, pythagoras, request_)
    assert reply is not None and error in json.loads(reply)["error"]


def test_ask_a_dead_endpoint_times_out(context: Context) -> None:
    with pytest.raises(Timeout, match=r"did not answer in 0\.2 s"):
        ask_pythagoras(context, "tcp://127.0.0.1:9", [(1, 1)], timeout=0.2)


def test_a_taken_port_is_a_clear_error(context: Context, pythagoras: str) -> None:
    with pytest.raises(ConnectError, match=r"cannot bind .*: Address already in use"):
        serve_pythagoras(context, pythagoras, threading.Event())
