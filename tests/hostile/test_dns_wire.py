"""Malformed DNS messages against the lab's DNS server, over UDP and TCP (RFC 1035, RFC 7766).

Pointer loops, lying counts and lengths, truncated headers, and a burst of mutated queries.
A malformed message may get no answer or a short error (FORMERR and friends), never a long
one (no amplification) and never a traceback; the normal client is served after each.
ANY is answered minimally (RFC 8482): at most twice the query's size.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time

import dns.message
import dns.rcode
import pytest

from tests.hostile.conftest import served, service_endpoints
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState

_QUESTION_TAIL = struct.pack("!HH", 1, 1)  # type A, class IN


def _header(ident: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, qd, an, ns, ar)


_WWW = b"\x03www\x07example\x03com\x00"

#: name -> a malformed message (each with its own ID).
MALFORMED: dict[str, bytes] = {
    "pointer-to-itself": _header(0x1101) + b"\xc0\x0c" + _QUESTION_TAIL,
    "pointer-loop-of-two": _header(0x1102) + b"\xc0\x0e\xc0\x0c" + _QUESTION_TAIL,
    "pointer-past-the-end": _header(0x1103) + b"\xc0\xff" + _QUESTION_TAIL,
    "label-longer-than-the-message": _header(0x1104) + b"\x3fwww",
    "label-over-63": _header(0x1105) + b"\x40" + b"a" * 64 + b"\x00" + _QUESTION_TAIL,
    "name-over-255": _header(0x1106)
    + b"\x3f"
    + b"a" * 63
    + (b"\x3f" + b"b" * 63) * 4
    + b"\x00"
    + _QUESTION_TAIL,
    "five-questions-announced-one-sent": _header(0x1107, qd=5) + _WWW + _QUESTION_TAIL,
    "hundred-answers-announced-none-sent": _header(0x1108, an=100) + _WWW + _QUESTION_TAIL,
    "question-without-type": _header(0x1109) + _WWW,
    "truncated-opt-record": _header(0x110A, ar=1) + _WWW + _QUESTION_TAIL + b"\x00\x00\x29\x10",
    "zero-questions": _header(0x110B, qd=0),
    "a-response-not-a-query": struct.pack("!HHHHHH", 0x110C, 0x8180, 1, 0, 0, 0)
    + _WWW
    + _QUESTION_TAIL,
}

#: Headers cut short: 0 to 11 bytes of a 12-byte header.
TRUNCATED = {f"header-of-{n}-bytes": _header(0x1200 + n)[:n] for n in (0, 1, 2, 5, 11)}


@pytest.fixture(scope="module")
def dns_udp(wirelab_lab: LabState) -> BoundEndpoint:
    return next(ep for ep in service_endpoints(wirelab_lab, "dns") if ep.protocol == "udp")


@pytest.fixture(scope="module")
def dns_tcp(wirelab_lab: LabState) -> BoundEndpoint:
    return next(ep for ep in service_endpoints(wirelab_lab, "dns") if ep.protocol == "tcp")


def _check_reply(name: str, query: bytes, reply: bytes | None) -> None:
    """No reply, or a short error: a response (QR) with FORMERR, NOTIMP, REFUSED or SERVFAIL."""
    if reply is None:
        return
    assert len(reply) <= max(2 * len(query), 64), (
        f"{name}: {len(query)} bytes in, {len(reply)} out (amplification)"
    )
    assert len(reply) >= 12, f"{name}: a reply shorter than a header: {reply!r}"
    ident, flags = struct.unpack("!HH", reply[:4])
    assert flags & 0x8000, f"{name}: the reply is not a response: {reply!r}"
    if len(query) >= 2:
        assert ident == struct.unpack("!H", query[:2])[0], f"{name}: reply with another ID"
    rcode = flags & 0x000F
    assert rcode in (
        dns.rcode.FORMERR,
        dns.rcode.NOTIMP,
        dns.rcode.REFUSED,
        dns.rcode.SERVFAIL,
    ), f"{name}: answered a malformed message with {dns.rcode.to_text(rcode)}"


def _udp_round(ep: BoundEndpoint, messages: dict[str, bytes]) -> dict[str, bytes | None]:
    """Send each message from its own socket at once; collect replies for half a second."""
    socks = {}
    try:
        for name, message in messages.items():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks[name] = sock
            sock.connect(ep.sockaddr)
            sock.send(message)
        time.sleep(0.3)
        replies: dict[str, bytes | None] = {}
        for name, sock in socks.items():
            sock.setblocking(False)
            try:
                replies[name] = sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                replies[name] = None
        return replies
    finally:
        for sock in socks.values():
            sock.close()


def test_malformed_over_udp(wirelab_lab: LabState, dns_udp: BoundEndpoint) -> None:
    """Pointer loops, lying lengths and counts, truncated headers: short errors or silence."""
    messages = {**MALFORMED, **TRUNCATED}
    replies = _udp_round(dns_udp, messages)
    for name, message in messages.items():
        _check_reply(name, message, replies[name])
    served(wirelab_lab, dns_udp, "after malformed datagrams")


def _tcp_exchange(ep: BoundEndpoint, data: bytes, wait: float = 0.5) -> bytes | None:
    """Send ``data``; the reply, or None if the server closes or stays silent for ``wait``."""
    with socket.create_connection(ep.sockaddr, timeout=wait) as sock:
        sock.sendall(data)
        try:
            head = sock.recv(2)
            if len(head) < 2:
                return None
            (size,) = struct.unpack("!H", head)
            reply = b""
            while len(reply) < size:
                chunk = sock.recv(size - len(reply))
                if not chunk:
                    break
                reply += chunk
            return reply
        except (ConnectionResetError, TimeoutError):
            return None


@pytest.mark.parametrize("name", [*MALFORMED, *TRUNCATED])
def test_malformed_over_tcp(
    wirelab_lab: LabState, dns_tcp: BoundEndpoint, dns_udp: BoundEndpoint, name: str
) -> None:
    """The same messages over TCP, each with its true two-byte length."""
    message = {**MALFORMED, **TRUNCATED}[name]
    reply = _tcp_exchange(dns_tcp, struct.pack("!H", len(message)) + message)
    _check_reply(name, message, reply)
    served(wirelab_lab, dns_tcp, f"after {name} over TCP")


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param(struct.pack("!H", 512), id="length-512-then-20-bytes"),
        pytest.param(struct.pack("!H", 65535), id="length-65535-then-20-bytes"),
        pytest.param(struct.pack("!H", 0), id="length-0"),
        pytest.param(b"\x00", id="half-a-length"),
    ],
)
def test_lying_tcp_length(wirelab_lab: LabState, dns_tcp: BoundEndpoint, prefix: bytes) -> None:
    """A length prefix the message never fills: the connection waits alone, others are served."""
    with socket.create_connection(dns_tcp.sockaddr, timeout=2.0) as sock:
        sock.sendall(prefix + (_header(0x1300) + _WWW[:8] if len(prefix) == 2 else b""))
        served(wirelab_lab, dns_tcp, "while a TCP query lies about its length")
    served(wirelab_lab, dns_tcp, "after a TCP query lied about its length")


def test_mutated_queries(wirelab_lab: LabState, dns_udp: BoundEndpoint) -> None:
    """Five hundred mutations of a real query (bytes flipped, cut, extended) in a burst."""
    gen = random.Random("dns-mutations")
    base = dns.message.make_query("www.example.com", "MX").to_wire()
    batch = {}
    for i in range(500):
        data = bytearray(base)
        for _ in range(gen.randrange(1, 6)):
            kind = gen.randrange(3) if data else 2
            if kind == 0:
                data[gen.randrange(len(data))] = gen.randrange(256)
            elif kind == 1:
                del data[gen.randrange(len(data)) :]
            else:
                data += gen.randbytes(gen.randrange(1, 32))
        batch[f"mutation-{i}"] = bytes(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(dns_udp.sockaddr)
        sock.setblocking(False)
        received = sent = 0
        for message in batch.values():
            try:
                sock.send(message)
                sent += len(message)
            except (BlockingIOError, ConnectionRefusedError):
                pass
            try:
                while True:
                    received += len(sock.recv(65535))
            except (BlockingIOError, ConnectionRefusedError):
                pass
    served(wirelab_lab, dns_udp, "after 500 mutated queries")
    served(wirelab_lab, service_endpoints(wirelab_lab, "dns")[1], "after 500 mutated queries")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_any_is_answered_minimally(
    wirelab_lab: LabState, dns_udp: BoundEndpoint, dns_tcp: BoundEndpoint, transport: str
) -> None:
    """RFC 8482: ANY gets a small answer, at most twice the query (was 29 bytes in, 322 out)."""
    query = dns.message.make_query("example.com", "ANY").to_wire()
    if transport == "udp":
        reply = _udp_round(dns_udp, {"any": query})["any"]
    else:
        reply = _tcp_exchange(dns_tcp, struct.pack("!H", len(query)) + query, wait=2.0)
    assert reply is not None, "ANY got no answer"
    parsed = dns.message.from_wire(reply)
    assert parsed.rcode() == dns.rcode.NOERROR
    assert len(reply) <= 2 * len(query), f"ANY: {len(query)} bytes in, {len(reply)} out"


#: Connections of the held-slots probe: more than the server's 64 TCP slots.
HOLDERS = 80


def test_tcp_slots_held_by_live_queries(wirelab_lab: LabState, dns_tcp: BoundEndpoint) -> None:
    """Connections that each send a real query now and then hold no slot from a newcomer
    (issue 11 item 3: 64 such connections shut every fresh TCP client out)."""
    query = dns.message.make_query("www.example.com", "A").to_wire()
    framed = struct.pack("!H", len(query)) + query
    holders: list[socket.socket] = []
    try:
        for _ in range(HOLDERS):
            try:
                sock = socket.create_connection(dns_tcp.sockaddr, timeout=1.0)
            except OSError:
                continue
            holders.append(sock)
        for _ in range(3):
            started = time.monotonic()
            for sock in list(holders):
                try:
                    sock.sendall(framed)
                    sock.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        sock.recv(4096)
                    sock.setblocking(True)
                except OSError:  # the server closed it to make room: allowed
                    holders.remove(sock)
                    sock.close()
            served(wirelab_lab, dns_tcp, f"while {len(holders)} connections query now and then")
            time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    finally:
        for sock in holders:
            sock.close()
    served(wirelab_lab, dns_tcp, "after the query holders left")
