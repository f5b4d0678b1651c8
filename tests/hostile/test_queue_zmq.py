"""Garbage and misbehaving ZeroMQ peers against the lab's pythagoras service (queue.rep).

Issue 11 item 5: one raw connection of garbage made the next real REQ go unanswered. Here
each misbehaving peer is followed, while it is still connected and after it leaves, by a
real REQ that must be answered within 2 s.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import time

import pytest
import zmq

from tests.hostile.conftest import lab_rss, served, served_within, service_endpoints
from tests.hostile.probes import wait_closed
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState


@pytest.fixture(scope="module")
def rep(wirelab_lab: LabState) -> BoundEndpoint:
    return service_endpoints(wirelab_lab, "queue")[0]


def _greeting() -> bytes:
    """A ZMTP 3.0 greeting with the NULL mechanism (rfc.zeromq.org/spec/23), as a client."""
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def _ready(socket_type: bytes) -> bytes:
    """The READY command announcing ``socket_type``."""
    prop = b"\x0bSocket-Type" + struct.pack("!I", len(socket_type)) + socket_type
    body = b"\x05READY" + prop
    return b"\x04" + bytes([len(body)]) + body


def test_garbage_then_a_real_request(wirelab_lab: LabState, rep: BoundEndpoint) -> None:
    """64 KiB of random bytes on a raw TCP connection; a real REQ is answered during and after."""
    gen = random.Random("zmq-garbage")
    with socket.create_connection(rep.sockaddr, timeout=2.0) as raw:
        # libzmq may drop the peer at its first bad byte, as it should.
        with contextlib.suppress(OSError):
            raw.sendall(gen.randbytes(64 << 10))
        served(wirelab_lab, rep, "while a garbage connection is open")
    served(wirelab_lab, rep, "after a garbage connection")


def test_two_frame_request_gets_an_error_reply(wirelab_lab: LabState, rep: BoundEndpoint) -> None:
    """A request of two frames (the log's "must be one frame, not 2") gets an error reply."""
    context = zmq.Context()
    try:
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RCVTIMEO, 2000)
        try:
            dealer.connect(f"tcp://{rep.address}:{rep.port}")
            dealer.send_multipart([b"", b'{"points": [[1, 2]]}', b"second frame"])
            reply = dealer.recv_multipart()
            served(wirelab_lab, rep, "after a two-frame request")
        finally:
            dealer.close(linger=0)
    finally:
        context.term()
    assert reply[0] == b"", reply
    assert "error" in json.loads(reply[-1]), reply


def test_peer_that_never_reads(wirelab_lab: LabState, rep: BoundEndpoint) -> None:
    """A DEALER that sends a hundred requests and never reads a reply holds nothing up."""
    context = zmq.Context()
    try:
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDTIMEO, 2000)
        try:
            dealer.connect(f"tcp://{rep.address}:{rep.port}")
            for _ in range(100):
                dealer.send_multipart([b"", b'{"points": [[1, 2]]}'])
            served(wirelab_lab, rep, "while a peer ignores a hundred replies")
        finally:
            dealer.close(linger=0)
    finally:
        context.term()
    served(wirelab_lab, rep, "after a peer ignored a hundred replies")


def test_frame_that_lies_about_its_length(wirelab_lab: LabState, rep: BoundEndpoint) -> None:
    """A valid greeting, then a frame announcing 2**40 bytes: dropped, nothing allocated."""
    before = lab_rss(wirelab_lab)
    with socket.create_connection(rep.sockaddr, timeout=2.0) as raw:
        raw.sendall(_greeting())
        # The server's greeting arrives first; read it so our READY is not reset.
        deadline = time.monotonic() + 2.0
        got = b""
        while len(got) < 64 and time.monotonic() < deadline:
            chunk = raw.recv(64 - len(got))
            if not chunk:
                break
            got += chunk
        with contextlib.suppress(OSError):
            raw.sendall(_ready(b"REQ") + b"\x02" + struct.pack("!Q", 1 << 40) + b"x" * 4096)
        served(wirelab_lab, rep, "while a frame lies about its length")
        assert wait_closed(raw, served_within()), "the server kept a peer announcing 1 TiB"
    served(wirelab_lab, rep, "after a frame lied about its length")
    assert lab_rss(wirelab_lab) - before < 64 << 20, "the lab grew after a lying frame"
