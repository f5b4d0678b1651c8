"""``wirelab rpc serve --kind ...``: serves until SIGTERM (exit 0); a taken port is one error."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import xmlrpc.client

import pytest

from tests.conftest import run_wirelab
from wirelab.rpc.client import JSONRPCClient, count_lines
from wirelab.rpc.rpyc_server import DEFAULT_FILES


@pytest.mark.parametrize("kind", ["xmlrpc", "jsonrpc", "rpyc"])
def test_serve_each_kind(kind: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "rpc", "serve", "--kind", kind, "-p", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        if kind == "xmlrpc":
            with xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2") as proxy:
                assert proxy.addtogether() == 0
        elif kind == "jsonrpc":
            with JSONRPCClient(f"http://127.0.0.1:{port}/") as client:
                assert client.call("lengths", "ab") == [[2, "ab"]]
        else:
            path = DEFAULT_FILES / "testfile.txt"
            assert count_lines("127.0.0.1", port, path, lambda line: None) == 5
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err


def test_a_taken_port_is_one_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_wirelab("rpc", "serve", "--kind", "rpyc", "-p", str(port))
    assert done.returncode == 1
    assert done.stderr.startswith("wirelab: error:") and "Traceback" not in done.stderr
