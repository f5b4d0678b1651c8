"""``wirelab data|stream|blocks ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import struct
import subprocess
import sys

import pytest

from tests.conftest import run_wirelab


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab(*args, env=env)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_encodings_json(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "data", "encodings", "Ὅμηρος", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["text"] == "Ὅμηρος" and doc["characters"] == 6
    by_codec = {row["codec"]: row for row in doc["encoded"]}
    assert by_codec["greek"]["error"] is not None  # the polytonic Ὅ is not in ISO-8859-7
    assert by_codec["utf-8"]["length"] == len("Ὅμηρος".encode())
    assert {row["handler"] for row in doc["decoded"]} == {"strict", "replace", "ignore"}


def test_encodings_with_other_bytes(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "data", "encodings", "--bytes", "c3a9")
    assert done.returncode == 0, done.stderr
    assert "latin-1              'Ã©'" in done.stdout


def test_struct_json(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "data", "struct", "1", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    packed = {row["format"]: row["hex"] for row in doc["packed"]}
    assert packed["!I"] == "00 00 00 01" and packed["<i"] == "01 00 00 00"
    assert doc["misread_big_as_little"] == 1 << 24


def test_struct_reports_numbers_that_do_not_fit(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "data", "struct", "--", "-1")
    assert done.returncode == 0, done.stderr
    assert re.search(r"!I .*does not fit: -1 is negative, and the unsigned format I", done.stdout)
    assert "its 4 bytes hold 0 to 4294967295" in done.stdout
    assert re.search(r"<i\s+ff ff ff ff", done.stdout)  # the signed formats take it
    big = run(wirelab_env, "data", "struct", "4294967296", "--json")
    errors = {row["format"]: row["error"] for row in json.loads(big.stdout)["packed"]}
    assert errors["!I"] == "does not fit: 4 bytes hold 0 to 4294967295"
    assert errors["!Q"] is None


def test_pickle_frames_itself_and_runs_code(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "data", "pickle", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    loads = doc["loads"]
    assert [row["value"] for row in loads] == [
        "[1, 2, 3]",
        "{'zen': 'Beautiful is better than ugly.'}",
        "'end'",
    ]
    assert all(row["last_byte"] == "." for row in loads)  # each load stopped at STOP
    assert [row["offset"] for row in loads][1:] == [r["offset"] + r["size"] for r in loads][:-1]
    assert doc["stopped_at"] == doc["stream_bytes"] - len("and then some")
    hostile = doc["code_on_load"]
    assert "GLOBAL" in hostile["opcodes"] and "REDUCE" in hostile["opcodes"]
    assert hostile["result"] == "9"  # len('Beautiful'): loading called a function
    text = run(wirelab_env, "data", "pickle")
    assert "never loads one from the wire" in text.stdout


def test_stream_client_json(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "stream", "client", "-m", "hello", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["sent"] == 5 and doc["verified"] is True  # the lab's summary matched
    assert doc["server_received"]["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_blocks_client_sends_one_block_per_message(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "blocks", "client", "-m", "one", "-m", "two!", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["sent_blocks"] == 2 and doc["server_received"]["blocks"] == 2
    assert doc["server_received"]["bytes"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["blocks", "client", "127.0.0.1", "-p", "nosuchservice"], "unknown service name"),
        (["stream", "client", "no-such-host.invalid", "-p", "1062"], "name service failure"),
        (["blocks", "client", "no-such-host.invalid", "-p", "1063"], "name service failure"),
        (["blocks", "client", "-m", ""], "block 1 is empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    wirelab_env: dict[str, str], args: list[str], message: str
) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: ") and message in lines[0]


@pytest.mark.parametrize("group", ["stream", "blocks"])
def test_refused_port_is_one_line_and_exit_1(wirelab_env: dict[str, str], group: str) -> None:
    done = run(wirelab_env, group, "client", "127.0.0.1", "-p", str(closed_port()))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["data", "struct", "lots"],
        ["data", "encodings", "--bytes", "zz"],
        ["stream", "client", "--no-such-option"],
        ["blocks", "serve", "--max-size", "-1"],
        ["blocks", "serve", ""],
        ["stream", "serve", ""],
        ["stream", "serve", "-p", "70000"],
        ["blocks", "client", ""],
        ["stream", "client", "-t", "inf"],
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    assert run(wirelab_env, *args).returncode == 2


def _talk_stream(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"abc")
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while data := sock.recv(1024):
            reply += data
        return reply


def _talk_blocks(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack("!I", 3) + b"abc" + struct.pack("!I", 0))
        reply = b""
        while data := sock.recv(1024):
            reply += data
        return reply[4:]


@pytest.mark.parametrize("group", ["stream", "blocks"])
def test_server_commands_serve_a_stdlib_client(wirelab_env: dict[str, str], group: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "wirelab", group, "serve", "127.0.0.1", "-p", "0"],
        env=wirelab_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        reply = _talk_stream(port) if group == "stream" else _talk_blocks(port)
        assert reply.startswith(b"received ") and b"3 bytes" in reply
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        if server.stderr is not None:
            server.stderr.close()
