"""Our clients against hostile servers (independent: http.server from the stdlib)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.rpc.test_xmlrpc import BILLION_LAUGHS
from wirelab.errors import RemoteProtocolError
from wirelab.rpc.client import JSONRPCClient, XMLRPCClient

ANSWERS: dict[str, bytes] = {
    "/laughs": BILLION_LAUGHS.replace(b"methodCall", b"methodResponse").replace(
        b"<methodName>remote_repr</methodName>", b""
    ),
    "/huge": b"<methodResponse><params><param><value><string>"
    + b"a" * (5 << 20)
    + b"</string></value></param></params></methodResponse>",
    "/json-huge": b'{"jsonrpc": "2.0", "result": "' + b"a" * (5 << 20) + b'", "id": 1}',
    "/json-other-id": b'{"jsonrpc": "2.0", "result": 1, "id": 999999}',
    "/json-garbage": b"<html>not json</html>",
}


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = ANSWERS[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_xml_client_refuses_a_billion_laughs_answer(hostile_base: str) -> None:
    with (
        XMLRPCClient(hostile_base + "/laughs") as client,
        pytest.raises(RemoteProtocolError, match="refused"),
    ):
        client.call("remote_repr", "x")


def test_xml_client_refuses_an_oversized_answer(hostile_base: str) -> None:
    with (
        XMLRPCClient(hostile_base + "/huge") as client,
        pytest.raises(RemoteProtocolError, match="over"),
    ):
        client.call("remote_repr", "x")


@pytest.mark.parametrize(
    ("path", "message"),
    [("/json-huge", "over"), ("/json-other-id", "id"), ("/json-garbage", "not JSON")],
)
def test_json_client_refuses_bad_answers(hostile_base: str, path: str, message: str) -> None:
    with (
        JSONRPCClient(hostile_base + path) as client,
        pytest.raises(RemoteProtocolError, match=message),
    ):
        client.call("lengths", "x")
