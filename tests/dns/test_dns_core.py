"""Properties of the sans-I/O DNS responder (Hypothesis): any bytes give a valid reply or
nothing, and every well-formed query gets an answer that dnspython accepts."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirelab.dns._core import Responder
from wirelab.dns.zone import Record, Zone, lab_zone, normalize_name
from wirelab.errors import ConfigError

RESPONDER = Responder(lab_zone(["nominatim.example.com"]))
ZONE_NAMES = RESPONDER.zone.names()
TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "ANY", "PTR", "SRV"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=700))
def test_any_bytes_give_a_reply_or_nothing(data: bytes) -> None:
    for transport in ("udp", "tcp"):
        reply = RESPONDER.respond(data, transport)  # type: ignore[arg-type]
        if reply is None:
            assert len(data) < 12 or data[2] & 0x80
            continue
        assert reply[:2] == data[:2]
        assert reply[2] & 0x80
        if transport == "udp":
            assert len(reply) <= 512 or b"\x00\x29" in reply


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=12, max_size=300))
def test_header_with_random_body_is_formerr_or_answered(body: bytes) -> None:
    data = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + body
    reply = RESPONDER.respond(data)
    assert reply is not None
    parsed = dns.message.from_wire(reply, ignore_trailing=True) if reply[5] else None
    if parsed is not None:
        assert parsed.id == 0xBEEF


labels = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(
        st.sampled_from(ZONE_NAMES), st.lists(labels, min_size=1, max_size=4).map(".".join)
    ),
    suffix=st.sampled_from(["", ".example.com", ".example.org"]),
    rdtype=st.sampled_from(TYPES),
    tcp=st.booleans(),
    upper=st.booleans(),
)
def test_well_formed_queries_get_consistent_answers(
    name: str, suffix: str, rdtype: str, tcp: bool, upper: bool
) -> None:
    qname = (name + suffix).upper() if upper else name + suffix
    query = dns.message.make_query(qname, rdtype)
    wire = RESPONDER.respond(query.to_wire(), "tcp" if tcp else "udp")
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert query.is_response(reply)
    zone = RESPONDER.zone
    lowered = normalize_name(qname)
    if not zone.contains(lowered):
        assert reply.rcode() == dns.rcode.REFUSED
    elif reply.flags & dns.flags.TC:
        assert not tcp
    elif zone.exists(lowered):
        assert reply.rcode() == dns.rcode.NOERROR
        if not zone.lookup(lowered, rdtype) and not zone.lookup(lowered, "CNAME"):
            assert reply.answer == [] and reply.authority  # no data, SOA shown
    else:
        assert reply.rcode() == dns.rcode.NXDOMAIN


def test_empty_non_terminal_is_nodata() -> None:
    zone = Zone("example.com")
    zone.add(Record("example.com", "SOA", ("ns.example.com", "h.example.com", 1, 2, 3, 4, 5)))
    zone.add(Record("a.b.example.com", "A", "127.0.0.1"))
    reply = dns.message.from_wire(
        Responder(zone).respond(dns.message.make_query("b.example.com", "A").to_wire()) or b""
    )
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []


def test_cname_loop_is_bounded() -> None:
    zone = Zone("example.com")
    zone.add(Record("example.com", "SOA", ("ns.example.com", "h.example.com", 1, 2, 3, 4, 5)))
    zone.add(Record("a.example.com", "CNAME", "b.example.com"))
    zone.add(Record("b.example.com", "CNAME", "a.example.com"))
    wire = Responder(zone).respond(dns.message.make_query("a.example.com", "A").to_wire(), "tcp")
    reply = dns.message.from_wire(wire or b"")
    assert 1 <= len(reply.answer) <= 8


def test_zone_rejects_bad_data() -> None:
    zone = Zone("example.com")
    with pytest.raises(ConfigError):
        zone.add(Record("python.org", "A", "127.0.0.1"))
    zone.add(Record("x.example.com", "A", "127.0.0.1"))
    with pytest.raises(ConfigError):
        zone.add(Record("x.example.com", "CNAME", "y.example.com"))
    with pytest.raises(ConfigError):
        Record("x.example.com", "A", "::1")
    with pytest.raises(ConfigError):
        normalize_name("a" * 64 + ".example.com")
    with pytest.raises(ConfigError):
        normalize_name("a..example.com")


def test_lab_zone_keeps_only_hosts_inside_example_com() -> None:
    zone = lab_zone(["mail.example.com", "nominatim.example.com", "python.org"])
    assert "nominatim.example.com" in zone.records
    assert "python.org" not in zone.records
    assert zone.lookup("smtp.example.com", "A") == []  # an alias owns only its CNAME
