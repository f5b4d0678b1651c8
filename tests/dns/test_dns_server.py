"""The lab DNS server, driven by dnspython (an independent client) over real UDP and TCP."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from wirelab.dns.server import ServerLimits
from wirelab.dns.zone import lab_zone
from wirelab.errors import ConfigError


def ask(
    srv: Any, name: str, rdtype: str, *, tcp: bool = False, **kw: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    if tcp:
        return dns.query.tcp(query, srv.host, port=srv.port, timeout=3)
    return dns.query.udp(query, srv.host, port=srv.port, timeout=3)


def texts(msg: dns.message.Message, rdtype: str) -> list[str]:
    kind = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in msg.answer if rrset.rdtype == kind for rd in rrset)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_book_records(dns_server: Any, tcp: bool) -> None:
    msg = ask(dns_server, "example.com", "MX", tcp=tcp)
    assert msg.rcode() == dns.rcode.NOERROR
    assert msg.flags & dns.flags.AA and not msg.flags & dns.flags.RA
    assert texts(msg, "MX") == ["10 mail.example.com."]
    assert texts(ask(dns_server, "mail.example.com", "A", tcp=tcp), "A") == ["127.0.0.1"]
    assert texts(ask(dns_server, "mail.example.com", "AAAA", tcp=tcp), "AAAA") == ["::1"]
    assert texts(ask(dns_server, "example.com", "NS", tcp=tcp), "NS") == ["backbone.example.com."]
    assert texts(ask(dns_server, "www.example.com", "MX", tcp=tcp), "MX") == [
        "10 smtp.example.com."
    ]
    txt = texts(ask(dns_server, "example.com", "TXT", tcp=tcp), "TXT")
    assert len(txt) == 1 and "wirelab" in txt[0]


def test_mx_answer_carries_glue(dns_server: Any) -> None:
    msg = ask(dns_server, "example.com", "MX")
    glue = {(r.name.to_text(), rd.to_text()) for r in msg.additional for rd in r}
    assert ("mail.example.com.", "127.0.0.1") in glue


def test_cname_then_target_in_answer(dns_server: Any) -> None:
    msg = ask(dns_server, "smtp.example.com", "A")
    assert [r.rdtype for r in msg.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert msg.answer[0].name.to_text() == "smtp.example.com."
    assert msg.answer[1].name.to_text() == "mail.example.com."
    assert texts(ask(dns_server, "smtp.example.com", "CNAME"), "CNAME") == ["mail.example.com."]


def test_every_service_host_resolves(dns_server: Any) -> None:
    assert texts(ask(dns_server, "nominatim.example.com", "A"), "A") == ["127.0.0.1"]
    assert texts(ask(dns_server, "backbone.example.com", "A"), "A") == ["127.0.0.1"]


def test_names_compare_case_insensitively(dns_server: Any) -> None:
    msg = ask(dns_server, "MAIL.Example.COM", "A")
    assert texts(msg, "A") == ["127.0.0.1"]
    assert msg.question[0].name.to_text() == "MAIL.Example.COM."


def test_existing_name_without_the_type_is_nodata_not_nxdomain(dns_server: Any) -> None:
    msg = ask(dns_server, "ftp.example.com", "MX")
    assert msg.rcode() == dns.rcode.NOERROR
    assert msg.answer == []
    assert [r.rdtype for r in msg.authority] == [dns.rdatatype.SOA]


def test_unknown_name_is_nxdomain_with_soa(dns_server: Any) -> None:
    msg = ask(dns_server, "nosuch.example.com", "A")
    assert msg.rcode() == dns.rcode.NXDOMAIN
    assert msg.flags & dns.flags.AA
    assert [r.rdtype for r in msg.authority] == [dns.rdatatype.SOA]


def test_names_outside_the_zone_are_refused(dns_server: Any) -> None:
    for name in ("python.org", "outside.example.org", "example.com.evil.net", "com"):
        assert ask(dns_server, name, "A").rcode() == dns.rcode.REFUSED, name


def test_other_class_is_refused(dns_server: Any) -> None:
    assert ask(dns_server, "version.bind", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED
    msg = ask(dns_server, "example.com", "A", rdclass="CH")
    assert msg.rcode() == dns.rcode.REFUSED


def test_null_mx(dns_server: Any) -> None:
    assert texts(ask(dns_server, "nomail.example.com", "MX"), "MX") == ["0 ."]


def test_big_answer_truncated_over_udp_complete_over_tcp(dns_server: Any) -> None:
    udp = ask(dns_server, "many.example.com", "TXT")
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    tcp = ask(dns_server, "many.example.com", "TXT", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert len(texts(tcp, "TXT")) == 40


def test_edns_raises_the_udp_limit_but_not_past_1232(dns_server: Any) -> None:
    msg = ask(dns_server, "many.example.com", "TXT", use_edns=0, payload=4096)
    assert msg.flags & dns.flags.TC
    assert msg.edns == 0  # the reply carries an OPT record too
    assert msg.payload == 1232
    small = ask(dns_server, "example.com", "MX", use_edns=0, payload=1232)
    assert not small.flags & dns.flags.TC


def test_unknown_edns_version_gets_badvers(dns_server: Any) -> None:
    msg = ask(dns_server, "example.com", "A", use_edns=1)
    assert msg.rcode() == dns.rcode.BADVERS


def test_resolver_retries_truncated_answers_over_tcp(dns_server: Any) -> None:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_server.host]
    resolver.port = dns_server.port
    resolver.lifetime = 5
    answer = resolver.resolve("many.example.com", "TXT")
    assert len(answer.rrset) == 40  # type: ignore[arg-type]


def test_other_opcode_is_notimp(dns_server: Any) -> None:
    query = dns.message.make_query("example.com", "A")
    query.set_opcode(dns.opcode.STATUS)
    reply = dns.query.udp(query, dns_server.host, port=dns_server.port, timeout=3)
    assert reply.rcode() == dns.rcode.NOTIMP


def _tcp_frame(msg: dns.message.Message) -> bytes:
    wire = msg.to_wire()
    return struct.pack("!H", len(wire)) + wire


def _read_frame(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 2:
        chunk = sock.recv(2 - len(head))
        assert chunk, "connection closed"
        head += chunk
    size = struct.unpack("!H", head)[0]
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        assert chunk, "connection closed"
        body += chunk
    return body


def test_pipelined_tcp_queries_answered_in_order(dns_server: Any) -> None:
    names = ["example.com", "mail.example.com", "www.example.com", "ftp.example.com"]
    queries = [dns.message.make_query(n, "A") for n in names]
    with socket.create_connection((dns_server.host, dns_server.port), timeout=3) as sock:
        sock.sendall(b"".join(_tcp_frame(q) for q in queries))
        for query in queries:
            reply = dns.message.from_wire(_read_frame(sock))
            assert reply.id == query.id
            assert reply.question[0].name == query.question[0].name


def test_tcp_query_over_the_limit_closes_that_connection_only(dns_server: Any) -> None:
    with socket.create_connection((dns_server.host, dns_server.port), timeout=3) as sock:
        sock.sendall(struct.pack("!H", 60000) + b"\0" * 100)
        assert sock.recv(10) == b""
    assert texts(ask(dns_server, "example.com", "A", tcp=True), "A") == ["127.0.0.1"]


def _query_frame(name: str = "example.com") -> tuple[dns.message.Message, bytes]:
    query = dns.message.make_query(name, "A")
    return query, _tcp_frame(query)


def _exchange(sock: socket.socket) -> None:
    query, frame = _query_frame()
    sock.sendall(frame)
    assert dns.message.from_wire(_read_frame(sock)).id == query.id


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed ``sock`` (EOF or reset), False if it still answers."""
    try:
        _exchange(sock)
    except (AssertionError, OSError):
        return True
    return False


def test_tcp_idle_connection_is_closed(start_dns: Any) -> None:
    srv = start_dns(lab_zone([]), ServerLimits(idle_timeout=0.3))
    with socket.create_connection((srv.host, srv.port), timeout=3) as quiet:
        began = time.monotonic()
        assert quiet.recv(10) == b""  # idle: closed by the server
        assert time.monotonic() - began < 2.5


def test_tcp_full_closes_the_idlest_connection_not_the_new_one(start_dns: Any) -> None:
    srv = start_dns(lab_zone([]), ServerLimits(max_tcp_connections=2))
    a = socket.create_connection((srv.host, srv.port), timeout=3)
    b = socket.create_connection((srv.host, srv.port), timeout=3)
    with a, b:
        _exchange(a)
        time.sleep(0.1)
        _exchange(b)  # a is now the idlest
        with socket.create_connection((srv.host, srv.port), timeout=3) as third:
            _exchange(third)  # served, not closed at once
            assert a.recv(10) == b""  # the idlest made room
            assert not _closed_by_server(b)
            _exchange(third)


def test_tcp_slow_clients_on_every_slot_do_not_lock_out_a_fresh_client(
    start_dns: Any,
) -> None:
    """Issue 11 item 3: 64 connections (the cap) querying every few seconds held every slot,
    and a fresh TCP client was closed at once. Now the idlest is closed to make room."""
    srv = start_dns(lab_zone([]))  # the default limits: a cap of 64
    assert ServerLimits().max_tcp_connections == 64
    slow = [socket.create_connection((srv.host, srv.port), timeout=3) for _ in range(64)]
    try:
        for _ in range(2):  # two slow rounds: a query on each connection, 64 in ~1 s
            for sock in slow:
                _exchange(sock)
                time.sleep(1 / 64)
        began = time.monotonic()
        reply = dns.query.tcp(
            dns.message.make_query("mail.example.com", "A"), srv.host, port=srv.port, timeout=2
        )
        assert time.monotonic() - began < 2.0
        assert texts(reply, "A") == ["127.0.0.1"]
        assert _closed_by_server(slow[0])  # the one quiet for longest made room
        assert not any(_closed_by_server(sock) for sock in slow[1:])
        assert srv.server.tcp.evicted == 1
    finally:
        for sock in slow:
            sock.close()


def test_tcp_connection_closed_after_its_query_budget(start_dns: Any) -> None:
    srv = start_dns(lab_zone([]), ServerLimits(max_queries=3))
    with socket.create_connection((srv.host, srv.port), timeout=3) as sock:
        queries = [_query_frame()[1] for _ in range(4)]
        sock.sendall(b"".join(queries))  # four pipelined: three answered, then EOF
        for _ in range(3):
            _read_frame(sock)
        assert sock.recv(10) == b""


def test_tcp_connection_closed_after_its_lifetime_however_busy(start_dns: Any) -> None:
    srv = start_dns(lab_zone([]), ServerLimits(max_lifetime=0.6))
    with socket.create_connection((srv.host, srv.port), timeout=3) as sock:
        began = time.monotonic()
        while not _closed_by_server(sock):
            assert time.monotonic() - began < 3.0, "never closed"
            time.sleep(0.05)
        assert time.monotonic() - began >= 0.5


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_any_is_answered_minimally_rfc8482(dns_server: Any, tcp: bool) -> None:
    """Issue 11 item 6: ANY for example.com was answered in full, 29 bytes in, 322 out."""
    query = dns.message.make_query("example.com", "ANY")
    send = dns.query.tcp if tcp else dns.query.udp
    reply = send(query, dns_server.host, port=dns_server.port, timeout=3)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.HINFO]
    assert [rd.to_text() for rd in reply.answer[0]] == ['"RFC8482" ""']
    assert reply.authority == [] and reply.additional == []
    assert len(reply.to_wire()) <= 2 * len(query.to_wire())  # was 11x
    alias = send(
        dns.message.make_query("smtp.example.com", "ANY"),
        dns_server.host,
        port=dns_server.port,
        timeout=3,
    )
    assert texts(alias, "CNAME") == ["mail.example.com."] and len(alias.answer) == 1
    missing = send(
        dns.message.make_query("nosuch.example.com", "ANY"),
        dns_server.host,
        port=dns_server.port,
        timeout=3,
    )
    assert missing.rcode() == dns.rcode.NXDOMAIN


@pytest.mark.parametrize(
    "bad",
    [{"max_queries": 0}, {"max_tcp_connections": 0}, {"idle_timeout": 0.0}, {"max_lifetime": -1}],
)
def test_impossible_limits_are_a_config_error(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ServerLimits(**bad)  # type: ignore[arg-type]
