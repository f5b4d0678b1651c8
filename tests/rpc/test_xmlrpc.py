"""The XML-RPC server, driven by the stdlib's xmlrpc.client and raw sockets; our client too."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from wirelab.rpc.client import RPCFault, XMLRPCClient

_opened: list[xmlrpc.client.ServerProxy] = []


@pytest.fixture(autouse=True)
def _close_proxies() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop()("close")()


def proxy(url: str) -> xmlrpc.client.ServerProxy:
    """The stdlib's client (closed after the test: it keeps its connection alive)."""
    opened = xmlrpc.client.ServerProxy(url)
    _opened.append(opened)
    return opened


def addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def post(url: str, body: bytes, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*addr(url), timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fault_of(body: bytes) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(body)
    return caught.value


def still_serves(url: str) -> None:
    assert proxy(url).addtogether(1, 2) == 3


def test_the_books_calls_with_the_stdlib_client(xml_url: str) -> None:
    server = proxy(xml_url)
    assert server.addtogether("x", "ÿ", "z") == "xÿz"
    assert server.addtogether(20, 30, 4, 1) == 55
    assert server.quadratic(2, -4, 0) == [0.0, 2.0]
    assert server.quadratic(1, 2, 1) == [-1.0]
    assert server.remote_repr((1, 2.0, "three")) == "[1, 2.0, 'three']"  # the tuple became a list
    assert server.remote_repr({"name": "Arthur", "data": {"age": 42, "sex": "M"}}) == (
        "{'name': 'Arthur', 'data': {'age': 42, 'sex': 'M'}}"
    )
    with pytest.raises(xmlrpc.client.Fault, match="no real roots") as caught:
        server.quadratic(1, 0, 1)
    assert caught.value.faultCode == -32602


def test_sum_of_zero_arguments(xml_url: str) -> None:
    assert proxy(xml_url).addtogether() == 0


def test_echo_is_the_repr(xml_url: str) -> None:
    assert proxy(xml_url).remote_repr("three") == "'three'"


def test_paths_root_and_rpc2(xml_url: str) -> None:
    assert proxy(xml_url + "RPC2").addtogether(2, 3) == 5
    status, _ = post(xml_url, b"<methodCall/>", path="/other")
    assert status == 404


def test_get_is_refused(xml_url: str) -> None:
    conn = http.client.HTTPConnection(*addr(xml_url), timeout=5)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status == 405
    finally:
        conn.close()


def test_introspection(xml_url: str) -> None:
    server = proxy(xml_url)
    names = server.system.listMethods()
    assert {"addtogether", "quadratic", "remote_repr", "system.multicall"} <= set(names)
    assert "real roots" in server.system.methodHelp("quadratic")
    with XMLRPCClient(xml_url) as client:
        infos = client.introspect()
    assert [i.name for i in infos] == ["addtogether", "quadratic", "remote_repr"]


def test_multicall(xml_url: str) -> None:
    batch = xmlrpc.client.MultiCall(proxy(xml_url))
    batch.addtogether("a", "b", "c")
    batch.quadratic(2, -4, 0)
    batch.remote_repr([1, 2.0, "three"])
    assert list(batch()) == ["abc", [0.0, 2.0], "[1, 2.0, 'three']"]
    with XMLRPCClient(xml_url) as client:
        results = client.multicall([("addtogether", (1, 2)), ("quadratic", (0, 1, 1))])
    assert results[0] == 3
    assert isinstance(results[1], RPCFault) and results[1].code == -32602


def test_our_client_maps_faults(xml_url: str) -> None:
    with XMLRPCClient(xml_url) as client:
        assert client.call("quadratic", 2, -4, 0) == [0.0, 2.0]
        with pytest.raises(RPCFault, match="a = 0") as caught:
            client.call("quadratic", 0, 1, 1)
        assert caught.value.code == -32602


def test_concurrent_clients(xml_url: str) -> None:
    def work(n: int) -> list[int]:
        server = proxy(xml_url)
        return [server.addtogether(n, i) for i in range(20)]

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(work, range(10)))
    assert results == [[n + i for i in range(20)] for n in range(10)]


# -- attacks: each refused, the server still serving ------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<methodCall><methodName>remote_repr</methodName>
<params><param><value><string>&lol9;</string></value></param></params></methodCall>"""


def test_billion_laughs_is_refused(xml_url: str) -> None:
    status, body = post(xml_url, BILLION_LAUGHS)
    assert status == 200
    fault = fault_of(body)
    assert fault.faultCode == -32700 and "refused" in fault.faultString
    still_serves(xml_url)


def test_quadratic_blowup_is_refused(xml_url: str) -> None:
    big = b"A" * 30_000
    refs = b"&a;" * 10_000
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "' + big + b'">]>'
        b"<methodCall><methodName>remote_repr</methodName><params><param><value><string>"
        + refs
        + b"</string></value></param></params></methodCall>"
    )
    status, body = post(xml_url, doc)
    assert status == 200 and fault_of(body).faultCode == -32700
    still_serves(xml_url)


def test_external_entity_is_refused(xml_url: str) -> None:
    doc = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<methodCall><methodName>remote_repr</methodName><params><param><value><string>"
        b"&x;</string></value></param></params></methodCall>"
    )
    status, body = post(xml_url, doc)
    assert status == 200
    fault = fault_of(body)
    assert fault.faultCode == -32700 and "root:" not in fault.faultString
    still_serves(xml_url)


def test_deep_nesting_is_refused(xml_url: str) -> None:
    depth = 1000  # 45 kB: under the 64 kB limit of these tests
    value = b"<value><array><data>" * depth + b"<value><int>1</int></value>"
    value += b"</data></array></value>" * depth
    doc = b"<methodCall><methodName>remote_repr</methodName><params><param>" + value
    doc += b"</param></params></methodCall>"
    status, body = post(xml_url, doc)
    assert status == 200 and "deeper" in fault_of(body).faultString
    still_serves(xml_url)


def test_stalled_half_body_does_not_freeze_others(xml_url: str) -> None:
    call = xmlrpc.client.dumps((1, 2), "addtogether").encode()
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        b"Content-Length: %d\r\n\r\n" % len(call)
    )
    with socket.create_connection(addr(xml_url), timeout=5) as stalled:
        stalled.sendall(head + call[: len(call) // 2])
        started = time.monotonic()
        still_serves(xml_url)  # served while the other one stalls
        assert time.monotonic() - started < 0.5
        answer = stalled.recv(4096)  # then the stalled one is timed out (1 s in these tests)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 3


def test_oversized_request_is_refused(xml_url: str) -> None:
    with socket.create_connection(addr(xml_url), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"  # 411
    with socket.create_connection(addr(xml_url), timeout=5) as sock:
        sock.sendall(chunked)
        with pytest.raises(OSError):
            for _ in range(100):
                sock.sendall(b"8000\r\n" + b"a" * 0x8000 + b"\r\n")
                time.sleep(0.001)
            raise ConnectionResetError("sent everything")
    still_serves(xml_url)


def test_compressed_body_is_refused(xml_url: str) -> None:
    conn = http.client.HTTPConnection(*addr(xml_url), timeout=5)
    try:
        conn.request("POST", "/", b"\x1f\x8b", {"Content-Encoding": "gzip"})
        assert conn.getresponse().status == 415
    finally:
        conn.close()


def test_unknown_method(xml_url: str) -> None:
    with pytest.raises(xmlrpc.client.Fault, match="'nope' is not supported") as caught:
        proxy(xml_url).nope()
    assert caught.value.faultCode == -32601


@pytest.mark.parametrize(
    ("method", "args"),
    [("quadratic", ("a", 1, 1)), ("quadratic", (1, 2)), ("addtogether", (1, "a"))],
)
def test_wrong_types(xml_url: str, method: str, args: tuple[object, ...]) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        getattr(proxy(xml_url), method)(*args)
    assert caught.value.faultCode == -32602
    assert "Traceback" not in caught.value.faultString and "<class" not in caught.value.faultString


@pytest.mark.parametrize(
    "name", ["quadratic.__globals__", "addtogether.__code__", "system.__class__"]
)
def test_dotted_names_are_never_resolved(xml_url: str, name: str) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        getattr(proxy(xml_url), name)()
    assert caught.value.faultCode == -32601


def test_not_xml_is_a_parse_fault(xml_url: str) -> None:
    status, body = post(xml_url, b"\x00\xffnot xml at all")
    assert status == 200 and fault_of(body).faultCode == -32700


def test_a_huge_integer_is_a_fault(xml_url: str) -> None:
    doc = b"<methodCall><methodName>addtogether</methodName><params><param><value><int>"
    doc += b"9" * 5000 + b"</int></value></param></params></methodCall>"
    status, body = post(xml_url, doc)
    assert status == 200 and fault_of(body).faultCode == -32700


def test_a_result_that_cannot_be_sent_is_a_fault(xml_url: str) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        proxy(xml_url).addtogether(2**31 - 1, 1)  # over XML-RPC's 32-bit int
    assert caught.value.faultCode == -32603


def test_many_at_once_while_one_stalls(xml_url: str) -> None:
    errors: list[BaseException] = []

    def normal() -> None:
        try:
            for _ in range(5):
                still_serves(xml_url)
        except BaseException as exc:
            errors.append(exc)

    with socket.create_connection(addr(xml_url), timeout=5) as stalled:
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<meth")
        threads = [threading.Thread(target=normal) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert not errors


def test_malformed_multicalls_get_our_faults(xml_url: str) -> None:
    calls = [
        {"methodName": "addtogether", "params": [1, 2]},
        {"methodName": "system.multicall", "params": [[]]},
        {"nothing": 1},
        "not a struct",
    ]
    results = proxy(xml_url).system.multicall(calls)
    assert results[0] == [3]
    assert [r["faultCode"] for r in results[1:]] == [-32600, -32600, -32600]
    assert all("<class" not in r["faultString"] for r in results[1:])
    with pytest.raises(xmlrpc.client.Fault) as caught:
        proxy(xml_url).system.multicall("not an array")
    assert caught.value.faultCode == -32602
