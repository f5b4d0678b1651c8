"""A pythagoras service in a thread, on a free loopback port, for the queue tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import zmq

from wirelab.queue.pythagoras import serve_pythagoras

Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def context() -> Iterator[Context]:
    ctx: Context = zmq.Context()
    yield ctx
    ctx.term()  # hangs if a test left a socket open with linger: the timeout catches it


@pytest.fixture
def pythagoras(context: Context) -> Iterator[str]:
    """The endpoint of a running pythagoras service."""
    stop = threading.Event()
    bound: list[str] = []
    ready = threading.Event()

    def run() -> None:
        serve_pythagoras(
            context, "tcp://127.0.0.1:*", stop, ready=lambda e: (bound.append(e), ready.set())
        )

    thread = threading.Thread(target=run, name="pythagoras-test")
    thread.start()
    try:
        assert ready.wait(5), "pythagoras did not bind"
        yield bound[0]
    finally:
        stop.set()
        thread.join(5)
