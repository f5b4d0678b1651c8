"""Security regressions: malformed DNS packets over raw UDP sockets get FORMERR or nothing,
and the server keeps answering real queries right after."""

from __future__ import annotations

import socket
import struct
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

HEADER = struct.Struct("!HHHHHH")


def send_raw(srv: Any, payload: bytes, *, wait: float = 0.3) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((srv.host, srv.port))
        sock.send(payload)
        sock.settimeout(wait)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def still_serving(srv: Any) -> None:
    """A real query is answered (retried like a resolver: a flood may fill the UDP buffer)."""
    query = dns.message.make_query("mail.example.com", "A")
    for attempt in range(3):
        try:
            reply = dns.query.udp(query, srv.host, port=srv.port, timeout=1.0)
            break
        except dns.exception.Timeout:
            if attempt == 2:
                raise
    assert reply.rcode() == dns.rcode.NOERROR
    assert [rd.to_text() for rrset in reply.answer for rd in rrset] == ["127.0.0.1"]


def rcode_of(reply: bytes) -> int:
    return HEADER.unpack_from(reply)[1] & 0xF


def question(name: bytes = b"\x04mail\x07example\x03com\x00", qtype: int = 1) -> bytes:
    return name + struct.pack("!HH", qtype, 1)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", b"\x12\x34\x01\x00\x00", b"x" * 11],
    ids=["empty", "one-byte", "five-bytes", "eleven-bytes"],
)
def test_packets_without_a_header_are_dropped(dns_server: Any, payload: bytes) -> None:
    assert send_raw(dns_server, payload) is None
    still_serving(dns_server)


def test_a_response_sent_to_the_server_is_dropped(dns_server: Any) -> None:
    packet = HEADER.pack(0x4242, 0x8180, 1, 0, 0, 0) + question()
    assert send_raw(dns_server, packet) is None
    still_serving(dns_server)


MALFORMED = {
    "question-count-lies": HEADER.pack(0x1111, 0x0100, 3, 0, 0, 0) + question(),
    "label-runs-past-end": HEADER.pack(0x2222, 0x0100, 1, 0, 0, 0) + b"\x3fabc",
    "pointer-to-itself": HEADER.pack(0x3333, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\1\0\1",
    "pointer-forward": HEADER.pack(0x4444, 0x0100, 1, 0, 0, 0) + b"\xc0\x40" + b"\0\1\0\1",
    "no-question-type": HEADER.pack(0x5555, 0x0100, 1, 0, 0, 0) + b"\x04mail\x00",
    "two-questions": HEADER.pack(0x6666, 0x0100, 2, 0, 0, 0) + question() + question(),
    "zero-questions": HEADER.pack(0x7777, 0x0100, 0, 0, 0, 0),
    "bad-utf8-label": HEADER.pack(0x8888, 0x0100, 1, 0, 0, 0) + question(b"\x02\xff\xfe\x00"),
    "answer-count-lies": HEADER.pack(0x9999, 0x0100, 1, 5, 0, 0) + question(),
    # A length octet of 64 (reserved label type): dnslib read it, then failed to pack the
    # answer, and the traceback reached the lab's log (found by tests/hostile).
    "label-over-63": HEADER.pack(0xA0A0, 0x0100, 1, 0, 0, 0)
    + question(b"\x40" + b"a" * 64 + b"\x00"),
    "name-too-long": HEADER.pack(0xAAAA, 0x0100, 1, 0, 0, 0)
    + question(b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"),
    "trailing-garbage-rdata": HEADER.pack(0xBBBB, 0x0100, 1, 0, 0, 1)
    + question()
    + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\xff\xff",
}


@pytest.mark.parametrize("payload", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_queries_get_formerr_with_their_id(dns_server: Any, payload: bytes) -> None:
    reply = send_raw(dns_server, payload, wait=2.0)
    assert reply is not None
    ident, flags, _qd, an, ns, _ar = HEADER.unpack_from(reply)
    assert ident == HEADER.unpack_from(payload)[0]
    assert flags & 0x8000, "QR must be set in a reply"
    assert rcode_of(reply) == dns.rcode.FORMERR
    assert an == ns == 0
    still_serving(dns_server)


def test_a_flood_of_garbage_then_a_real_query(dns_server: Any) -> None:
    import random

    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(200):
            size = rng.randrange(0, 600)
            sock.sendto(
                bytes(rng.randrange(256) for _ in range(size)), (dns_server.host, dns_server.port)
            )
    still_serving(dns_server)


def test_malformed_query_over_tcp_gets_formerr_and_connection_stays(dns_server: Any) -> None:
    bad = MALFORMED["pointer-to-itself"]
    good = dns.message.make_query("example.com", "MX").to_wire()
    with socket.create_connection((dns_server.host, dns_server.port), timeout=3) as sock:
        sock.sendall(struct.pack("!H", len(bad)) + bad + struct.pack("!H", len(good)) + good)
        stream = b""
        while len(stream) < 2 or len(stream) < 2 + struct.unpack("!H", stream[:2])[0] + 2:
            chunk = sock.recv(4096)
            assert chunk
            stream += chunk
        first_len = struct.unpack("!H", stream[:2])[0]
        first = stream[2 : 2 + first_len]
        assert rcode_of(first) == dns.rcode.FORMERR
        rest = stream[2 + first_len :]
        while len(rest) < 2 + struct.unpack("!H", rest[:2])[0]:
            chunk = sock.recv(4096)
            assert chunk
            rest += chunk
        second = dns.message.from_wire(rest[2:])
        assert second.rcode() == dns.rcode.NOERROR
