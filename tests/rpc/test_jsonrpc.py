"""The JSON-RPC 2.0 server, driven by jsonrpclib-pelix (the book's library) and raw HTTP."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from wirelab.rpc.client import JSONRPCClient
from wirelab.rpc.jsoncodec import Call, JSONRPCError

BOOK_ARGS = ((1, 2, 3), 27, {"Sirius": -1.46, "Rigel": 0.12})
BOOK_ANSWER = [[3, [1, 2, 3]], [None, 27], [2, {"Sirius": -1.46, "Rigel": 0.12}]]


def post(url: str, body: bytes) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json-rpc"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_books_client_library(json_url: str) -> None:
    from jsonrpclib import Server

    proxy = Server(json_url)
    try:
        assert proxy.lengths(*BOOK_ARGS) == BOOK_ANSWER
        proxy._notify.lengths(1)  # a notification: an empty 200, as jsonrpclib's server
    finally:
        proxy("close")()


def test_our_client(json_url: str) -> None:
    with JSONRPCClient(json_url) as client:
        assert client.call("lengths", *BOOK_ARGS) == BOOK_ANSWER
        client.notify("lengths", 1)
        assert client.call("lengths") == []


def test_batch_with_notification_and_errors(json_url: str) -> None:
    with JSONRPCClient(json_url) as client:
        results = client.batch(
            [
                Call("lengths", ["ab"]),
                Call("lengths", [1], notify=True),
                Call("nope"),
                Call("lengths", {"x": 1}),
            ]
        )
    assert results[0] == [[2, "ab"]]
    assert results[1] is None
    assert isinstance(results[2], JSONRPCError) and results[2].code == -32601
    assert isinstance(results[3], JSONRPCError) and results[3].code == -32602
    assert results[3].data  # says why


def test_typed_error_reaches_the_client(json_url: str) -> None:
    with JSONRPCClient(json_url) as client, pytest.raises(JSONRPCError) as caught:
        client.call("missing")
    assert caught.value.code == -32601 and "missing" in caught.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[" * 30_000 + b"]" * 30_000, -32700),
        (b"[]", -32600),
        (b'{"jsonrpc": "1.0", "method": "lengths", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": 5, "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "lengths", "params": 3, "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "lengths", "params": [], "id": [1]}', -32600),
        (
            b"[" + b",".join([b'{"jsonrpc": "2.0", "method": "lengths", "id": 1}'] * 1001) + b"]",
            -32600,
        ),
    ],
)
def test_bad_requests_get_the_specs_errors(json_url: str, body: bytes, code: int) -> None:
    status, answer = post(json_url, body)
    assert status == 200
    assert json.loads(answer)["error"]["code"] == code


def test_all_notifications_get_nothing(json_url: str) -> None:
    status, answer = post(json_url, b'[{"jsonrpc": "2.0", "method": "lengths", "params": [1]}]')
    assert status == 200 and answer == b""
