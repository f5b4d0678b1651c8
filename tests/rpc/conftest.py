"""Fixtures of the chapter 18 tests: each server on its own loopback port, with short limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wirelab.net.server import ServerThread
from wirelab.rpc.http import RPCHTTPLimits
from wirelab.rpc.rpyc_server import RPyCLimits, RPyCServer, start_rpyc_server
from wirelab.rpc.server import open_jsonrpc_server, open_xmlrpc_server

#: Short enough that a stalled client is timed out within a test.
LIMITS = RPCHTTPLimits(request_timeout=1.0, max_body=64 << 10)


@pytest.fixture
def xml_url() -> Iterator[str]:
    with ServerThread(lambda: open_xmlrpc_server("127.0.0.1", 0, limits=LIMITS)) as server:
        yield f"http://127.0.0.1:{server.address[1]}/"


@pytest.fixture
def json_url() -> Iterator[str]:
    with ServerThread(lambda: open_jsonrpc_server("127.0.0.1", 0, limits=LIMITS)) as server:
        yield f"http://127.0.0.1:{server.address[1]}/"


@pytest.fixture
def rpyc_server() -> Iterator[RPyCServer]:
    server = start_rpyc_server(
        "127.0.0.1", 0, limits=RPyCLimits(frame_timeout=1.0, max_frame=1 << 20, max_lines=1000)
    )
    try:
        yield server
    finally:
        server.close()
