"""``Expect: 100-continue`` on the XML-RPC and JSON-RPC servers (RFC 9110 section 10.1.1).

Driven by curl (an independent client that waits for ``100 Continue`` before a large body)
and by raw sockets (to see exactly what arrives, and when).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import xmlrpc.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.rpc.conftest import LIMITS

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def head(length: int, *, expect: bytes = b"100-continue", path: bytes = b"/RPC2") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n" % path
        + (b"Expect: " + expect + b"\r\n" if expect else b"")
        + b"Content-Length: %d\r\n\r\n" % length
    )


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response: (head, body), read by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole head: {data!r}"
        data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    length = int(top.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed before a whole body"
        rest += chunk
    return top, rest[:length]


def nothing_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server sends nothing for ``seconds`` (it waits for the body)."""
    sock.settimeout(seconds)
    try:
        return not sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)


def test_continue_is_sent_before_the_body_is_read(xml_url: str) -> None:
    body = xmlrpc.client.dumps((2, 3), "addtogether").encode()
    with connect(xml_url) as sock:
        sock.sendall(head(len(body)))
        assert sock.recv(len(CONTINUE)) == CONTINUE
        sock.sendall(body)
        top, answer = read_response(sock)
        assert top.startswith(b"HTTP/1.1 200 ")
        assert xmlrpc.client.loads(answer)[0] == (5,)
        # Keep-alive goes on: a second request with its own 100 Continue.
        sock.sendall(head(len(body)))
        assert sock.recv(len(CONTINUE)) == CONTINUE
        sock.sendall(body)
        assert xmlrpc.client.loads(read_response(sock)[1])[0] == (5,)


def test_continue_on_json_rpc(json_url: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "method": "lengths", "params": ["ab"], "id": 7}).encode()
    with connect(json_url) as sock:
        sock.sendall(head(len(body)))
        assert sock.recv(len(CONTINUE)) == CONTINUE
        sock.sendall(body)
        assert json.loads(read_response(sock)[1])["result"] == [[2, "ab"]]


def test_no_continue_when_the_body_came_with_the_head(xml_url: str) -> None:
    # RFC 9110 section 10.1.1: a server MAY omit the 100 once the content has arrived.
    body = xmlrpc.client.dumps((1, 1), "addtogether").encode()
    with connect(xml_url) as sock:
        sock.sendall(head(len(body)) + body)
        top, answer = read_response(sock)
        assert top.startswith(b"HTTP/1.1 200 ")
        assert xmlrpc.client.loads(answer)[0] == (2,)


def test_an_over_limit_length_is_refused_before_the_body(xml_url: str) -> None:
    with connect(xml_url) as sock:
        sock.sendall(head(LIMITS.max_body + 1))
        top, text = read_response(sock)
        assert top.startswith(b"HTTP/1.1 413 ")
        assert b"too large" in text
        assert b"connection: close" in top.lower()
        assert sock.recv(1) == b""  # end of file: no body is read


@pytest.mark.parametrize(
    ("path", "status"), [(b"/nowhere", b"404"), (b"/RPC2?x", b"200"), (b"/", b"200")]
)
def test_the_head_alone_is_judged(xml_url: str, path: bytes, status: bytes) -> None:
    body = xmlrpc.client.dumps((1, 2), "addtogether").encode()
    with connect(xml_url) as sock:
        sock.sendall(head(len(body), path=path))
        if status == b"200":
            assert sock.recv(len(CONTINUE)) == CONTINUE
            sock.sendall(body)
        top, _ = read_response(sock)
        assert top.startswith(b"HTTP/1.1 " + status)


def test_another_expectation_is_a_417(xml_url: str) -> None:
    with connect(xml_url) as sock:
        sock.sendall(head(10, expect=b"100-continue, x-magic"))
        top, _ = read_response(sock)
        assert top.startswith(b"HTTP/1.1 417 ")


def test_http_1_0_expect_is_ignored(xml_url: str) -> None:
    body = xmlrpc.client.dumps((4, 5), "addtogether").encode()
    request = head(len(body)).replace(b"HTTP/1.1", b"HTTP/1.0")
    with connect(xml_url) as sock:
        sock.sendall(request)
        assert nothing_within(sock, 0.3)  # no 100 for HTTP/1.0: the body is awaited
        sock.sendall(body)
        top, answer = read_response(sock)
        assert top.startswith(b"HTTP/1.1 200 ")
        assert xmlrpc.client.loads(answer)[0] == (9,)


def test_a_client_that_never_sends_the_body_gets_a_408(xml_url: str) -> None:
    with connect(xml_url) as sock:
        sock.sendall(head(100))
        assert sock.recv(len(CONTINUE)) == CONTINUE
        top, _ = read_response(sock)  # after LIMITS.request_timeout
        assert top.startswith(b"HTTP/1.1 408 ")


curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def run_curl(url: str, body_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            "10",
            "--expect100-timeout",
            "5",  # curl's default is 1 s, after which it sends the body anyway
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            f"@{body_file}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@curl
def test_curl_waits_for_continue_and_gets_the_answer(xml_url: str, tmp_path: Path) -> None:
    numbers = list(range(1000))  # a body of tens of KiB, under the 64 KiB limit
    body = xmlrpc.client.dumps(tuple(numbers), "addtogether").encode()
    assert 1024 < len(body) < LIMITS.max_body
    (tmp_path / "call.xml").write_bytes(body)
    done = run_curl(xml_url + "RPC2", tmp_path / "call.xml", "-H", "Expect: 100-continue")
    assert done.returncode == 0, done.stderr
    assert "< HTTP/1.1 100 Continue" in done.stderr
    assert xmlrpc.client.loads(done.stdout.encode())[0] == (sum(numbers),)


@curl
def test_curl_large_body_is_refused_with_413_unsent(xml_url: str, tmp_path: Path) -> None:
    # Over 1 MiB, every curl sends Expect: 100-continue by itself.
    (tmp_path / "big.xml").write_bytes(b"x" * (2 << 20))
    done = run_curl(xml_url, tmp_path / "big.xml", "--write-out", "\n%{http_code} %{size_upload}")
    assert "> Expect: 100-continue" in done.stderr
    code, uploaded = done.stdout.strip().splitlines()[-1].split()
    assert code == "413"
    assert int(uploaded) == 0  # the body was never sent
    assert "< HTTP/1.1 100 Continue" not in done.stderr
