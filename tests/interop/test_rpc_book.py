"""Chapter 18 with the book's programs (test-only peers, ``book_rpc.py``), both ways.

* the book's clients against our lab servers: unchanged, they print what the book prints,
  except the answers the book got wrong (``quadratic(2, -4, 0)`` is [0.0, 2.0], not [0.0, 8.0]);
* our clients against the book's servers: they take every answer, and show the book's wrong
  roots; the book's empty-file bug reaches our RPyC client as one clear error;
* exact bytes: for the same request our XML-RPC server sends the same answer body as the
  stdlib's SimpleXMLRPCServer (the book's), where the answer is the same.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.interop.book_process import book_client, book_server
from wirelab.errors import RemoteProtocolError
from wirelab.lab.state import ServiceView
from wirelab.rpc.client import JSONRPCClient, XMLRPCClient, count_lines

BOOK_CLIENT_OUTPUT = [
    "xÿz",
    "55",
    "[0.0, 2.0]",  # the book's server: [0.0, 8.0]
    "[-1.0]",
    "[1, 2.0, 'three']",
    "[1, 2.0, 'three']",
    "{'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}}",
]


def _port(lab_rpc: ServiceView, endpoint: str) -> str:
    return str(lab_rpc.endpoint(endpoint).port)


def test_book_xmlrpc_client_against_our_server(lab_rpc: ServiceView) -> None:
    done = book_client("book_rpc.py", "xmlrpc_client.py", _port(lab_rpc, "xmlrpc"), transcript=None)
    assert done.stdout.splitlines() == BOOK_CLIENT_OUTPUT
    # it ends on the fault traceback, as the book's does; ours says why in words
    assert done.returncode == 1
    assert "Fault -32602: 'no real roots" in done.stderr.splitlines()[-1]


def test_book_introspect_against_our_server(lab_rpc: ServiceView) -> None:
    done = book_client(
        "book_rpc.py", "xmlrpc_introspect.py", _port(lab_rpc, "xmlrpc"), transcript=None
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Here are the functions supported by this server:"
    assert [line for line in lines if line.endswith("(...)")] == [
        "addtogether(...)",
        "quadratic(...)",
        "remote_repr(...)",
    ]
    assert "   Return the `repr()` rendering of the supplied `arg`." in lines  # print("  ", help)


def test_book_multicall_against_our_server(lab_rpc: ServiceView) -> None:
    done = book_client(
        "book_rpc.py", "xmlrpc_multicall.py", _port(lab_rpc, "xmlrpc"), transcript=None
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["abc", "[0.0, 2.0]", "[1, 2.0, 'three']"]


def test_book_jsonrpc_client_against_our_server(lab_rpc: ServiceView) -> None:
    done = book_client(
        "book_rpc.py", "jsonrpc_client.py", _port(lab_rpc, "jsonrpc"), transcript=None
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip() == "[[3, [1, 2, 3]], [None, 27], [2, {'Sirius': -1.46, 'Rigel': 0.12}]]"
    )


def test_book_rpyc_client_against_our_server(lab_rpc: ServiceView, tmp_path: Path) -> None:
    (tmp_path / "testfile.txt").write_text("Simple\nis\nbetter\nthan\ncomplex.\n")
    done = _run_in(tmp_path, "rpyc_client.py", _port(lab_rpc, "rpyc"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Noisy: 'Simple\\n'",
        "Noisy: 'is\\n'",
        "Noisy: 'better\\n'",
        "Noisy: 'than\\n'",
        "Noisy: 'complex.\\n'",
        "The number of lines in the file was 5",
    ]


def _run_in(directory: Path, program: str, port: str) -> subprocess.CompletedProcess[str]:
    """Run a client peer in ``directory`` (the book's rpyc client opens testfile.txt there)."""
    script = Path(__file__).resolve().parent / "book_rpc.py"
    return subprocess.run(
        [sys.executable, "-u", str(script), program, port],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_our_clients_against_the_book_xmlrpc_server(tmp_path: Path) -> None:
    with book_server("book_rpc.py", "xmlrpc_server.py", transcript=tmp_path / "w") as peer:
        url = f"http://127.0.0.1:{peer.port}/"
        with XMLRPCClient(url) as client:
            assert client.call("addtogether", "x", "ÿ", "z") == "xÿz"
            assert client.call("quadratic", 2, -4, 0) in ([0.0, 8.0], [8.0, 0.0])  # wrong
            assert client.call("remote_repr", (1, 2.0, "three")) == [1, 2.0, "three"]  # no repr
            assert [i.name for i in client.introspect()] == [
                "addtogether",
                "quadratic",
                "remote_repr",
            ]
            assert client.multicall([("addtogether", ("a", "b"))]) == ["ab"]
        done = run_wirelab("rpc", "client", "127.0.0.1", "-p", str(peer.port))
        assert done.returncode == 0, done.stderr
        assert "quadratic(1, 0, 1) -> fault 1: <class 'ValueError'>:math domain error" in (
            done.stdout
        )
        done = run_wirelab("rpc", "call", url, "addtogether")  # the book's TypeError
        assert done.returncode == 1 and "fault 1:" in done.stderr
        assert "Traceback" not in done.stderr


def test_same_answer_bytes_as_the_books_server(lab_rpc: ServiceView, tmp_path: Path) -> None:
    ours = lab_rpc.endpoint("xmlrpc").sockaddr
    with book_server("book_rpc.py", "xmlrpc_server.py", transcript=tmp_path / "w") as peer:
        for params, method in [
            (("x", "ÿ", "z"), "addtogether"),
            ((20, 30, 4, 1), "addtogether"),
            ((1, 2, 1), "quadratic"),
            ((), "system.listMethods"),
        ]:
            body = xmlrpc.client.dumps(params, method).encode()
            theirs_status, theirs = _post(("127.0.0.1", peer.port), body)
            our_status, our = _post(ours, body)
            assert (our_status, our) == (theirs_status, theirs), method


def _post(address: tuple[str, int], body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "text/xml"
        return response.status, response.read()
    finally:
        conn.close()


def test_the_books_server_freezes_on_a_stalled_client_ours_does_not(
    lab_rpc: ServiceView, tmp_path: Path
) -> None:
    def stalled_then_call(address: tuple[str, int]) -> bool:
        with socket.create_connection(address, timeout=5) as stalled:
            stalled.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n<m")
            time.sleep(0.1)
            try:
                with XMLRPCClient(f"http://{address[0]}:{address[1]}/", timeout=1.0) as client:
                    return bool(client.call("addtogether", 1, 2) == 3)
            except Exception:
                return False

    assert stalled_then_call(lab_rpc.endpoint("xmlrpc").sockaddr)
    with book_server("book_rpc.py", "xmlrpc_server.py", transcript=tmp_path / "w") as peer:
        assert not stalled_then_call(("127.0.0.1", peer.port))


def test_our_jsonrpc_client_against_the_book_server(tmp_path: Path) -> None:
    with book_server("book_rpc.py", "jsonrpc_server.py", transcript=tmp_path / "w") as peer:
        with JSONRPCClient(f"http://127.0.0.1:{peer.port}/") as client:
            assert client.call("lengths", (1, 2, 3), 27, {"Sirius": -1.46}) == [
                [3, [1, 2, 3]],
                [None, 27],
                [1, {"Sirius": -1.46}],
            ]
        done = run_wirelab(
            "rpc", "client", "127.0.0.1", "-p", str(peer.port), "--kind", "jsonrpc", "--json"
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["calls"][0]["result"][1] == [None, 27]


def test_our_rpyc_client_against_the_book_server(tmp_path: Path) -> None:
    path = tmp_path / "testfile.txt"
    path.write_text("Simple\nis\nbetter\nthan\ncomplex.\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with book_server("book_rpc.py", "rpyc_server.py", transcript=tmp_path / "w") as peer:
        heard: list[str] = []
        assert count_lines("127.0.0.1", peer.port, path, heard.append) == 5
        assert heard[0] == "Simple\n"
        with pytest.raises(RemoteProtocolError, match="UnboundLocalError"):
            count_lines("127.0.0.1", peer.port, empty, heard.append)


def test_same_jsonrpc_answer_bytes_as_the_books_server(
    lab_rpc: ServiceView, tmp_path: Path
) -> None:
    body = (
        b'{"jsonrpc": "2.0", "method": "lengths", "params": [[1, 2, 3], 27, '
        b'{"Sirius": -1.46, "Rigel": 0.12}, "\\u00ff"], "id": 5}'
    )
    with book_server("book_rpc.py", "jsonrpc_server.py", transcript=tmp_path / "w") as peer:
        theirs = _post_json(("127.0.0.1", peer.port), body)
    ours = _post_json(lab_rpc.endpoint("jsonrpc").sockaddr, body)
    assert ours == theirs
    assert b"\\u00ff" in ours


def _post_json(address: tuple[str, int], body: bytes) -> bytes:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json-rpc"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json-rpc"
        return response.read()
    finally:
        conn.close()
