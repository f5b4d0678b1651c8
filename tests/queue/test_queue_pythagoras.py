"""The pythagoras REP service, driven by plain pyzmq REQ sockets (not our pipeline)."""

from __future__ import annotations

import json
import threading

import pytest
import zmq

from wirelab.errors import ConfigError, RemoteProtocolError, Timeout
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
    assert ask_pythagoras(context, pythagoras, [(5, 12)]) == [169]
    with pytest.raises(RemoteProtocolError, match="refused the request"):
        ask_pythagoras(context, pythagoras, [(-1, 0)])


def test_ask_a_dead_endpoint_times_out(context: Context) -> None:
    with pytest.raises(Timeout, match=r"did not answer in 0\.2 s"):
        ask_pythagoras(context, "tcp://127.0.0.1:9", [(1, 1)], timeout=0.2)


def test_a_taken_port_is_a_clear_error(context: Context, pythagoras: str) -> None:
    with pytest.raises(ConfigError, match=r"cannot bind .*: Address already in use"):
        serve_pythagoras(context, pythagoras, threading.Event())
