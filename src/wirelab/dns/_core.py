"""DNS server core (RFC 1034, RFC 1035, RFC 2308, RFC 6891): query bytes in, reply bytes out.

Sans-I/O: no sockets, no clock. dnslib is used only as the wire codec; the answering logic is
ours, because dnslib's stock zone resolver puts CNAME targets in the wrong place and answers
NXDOMAIN for names that exist without the asked type. The rules, in order:

1. Fewer than 12 bytes (no readable header), or a *response* (QR set): drop, say nothing.
   Answering responses could start a loop between two servers.
2. Bytes dnslib cannot parse, or not exactly one question: FORMERR, same ID, no question.
3. An opcode other than QUERY: NOTIMP (RFC 1035 section 4.1.1).
4. An EDNS version above 0: BADVERS (RFC 6891 section 6.1.3); two OPT records: FORMERR.
5. A class other than IN/ANY, or a name outside the zone: REFUSED (we are authoritative
   only, and offer no recursion: RA stays 0).
6. A CNAME at the name: the CNAME, then the target's records of the asked type, chased inside
   the zone (at most :data:`MAX_CNAME_CHAIN` links).
7. A name that exists without that type: NOERROR with no answer ("no data") and the SOA in
   the authority section; a name that does not exist: NXDOMAIN with the SOA (RFC 2308).
8. ANY (QTYPE 255) gets a minimal answer, as RFC 8482 section 4 describes, over UDP and
   TCP alike: the CNAME at an alias (its only RRset), else one synthesized
   ``HINFO "RFC8482" ""`` (section 4.2). The full set of records would turn a 29-byte query
   into a 322-byte answer, an 11x amplifier for anyone who can forge a source address.
9. An answer larger than the client can take over UDP (512 bytes, or its EDNS size up to
   :data:`MAX_EDNS_UDP`): the question alone with TC set, so the client retries over TCP
   (RFC 1035 section 4.2.1, RFC 7766). Additional-section glue is dropped first.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any, Literal

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    MX,
    NS,
    QTYPE,
    RCODE,
    RD,
    RR,
    SOA,
    TXT,
    A,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from wirelab.dns.zone import Record, Zone

__all__ = [
    "BADVERS",
    "CLASSIC_UDP_LIMIT",
    "MAX_CNAME_CHAIN",
    "MAX_EDNS_UDP",
    "Responder",
    "Transport",
]

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp"]

#: Largest UDP answer to a client that did not send EDNS (RFC 1035 section 4.2.1).
CLASSIC_UDP_LIMIT = 512

#: Largest UDP answer we send even when EDNS asks for more: 1232 bytes avoids IP fragmentation
#: on any IPv6 path (the DNS Flag Day 2020 value).
MAX_EDNS_UDP = 1232

#: Longest CNAME chain we follow inside the zone before answering with what we have.
MAX_CNAME_CHAIN = 8

#: Extended RCODE "bad EDNS version" (RFC 6891 section 6.1.3): 16 = upper 8 bits 1, RCODE 0.
BADVERS = 16

_WIRE_NAME_MAX = 255
_LABEL_MAX = 63
_HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_IN = 1
_ANY_CLASS = 255
_OPT = 41

#: RFC 8482 section 4.2: the HINFO a responder synthesizes for ANY. Its RDATA is two
#: character strings, CPU "RFC8482" and OS "" (each a length octet and its bytes).
_RFC8482_HINFO = RD(b"\x07RFC8482\x00")


@dataclass(frozen=True)
class _Query:
    id: int
    rd: int
    question: DNSQuestion
    edns: int | None  # the UDP size the client offered through EDNS, clamped; None: no EDNS


def _to_rr(owner: DNSLabel | str, record: Record) -> RR:
    value: Any = record.value
    rdata: Any
    if record.type == "A":
        rdata = A(value)
    elif record.type == "AAAA":
        rdata = AAAA(value)
    elif record.type == "CNAME":
        rdata = CNAME(value)
    elif record.type == "NS":
        rdata = NS(value)
    elif record.type == "MX":
        rdata = MX(value[1], value[0])
    elif record.type == "TXT":
        rdata = TXT(value)
    else:  # SOA
        rdata = SOA(value[0], value[1], tuple(value[2:]))
    return RR(owner, getattr(QTYPE, record.type), rdata=rdata, ttl=record.ttl)


class Responder:
    """Answers queries for one zone.

    Args:
        zone: the records to serve.
        max_edns_udp: the largest UDP answer, whatever EDNS size the client offers.
    """

    def __init__(self, zone: Zone, *, max_edns_udp: int = MAX_EDNS_UDP) -> None:
        self.zone = zone
        self.max_edns_udp = max(CLASSIC_UDP_LIMIT, max_edns_udp)

    # -- entry point --------------------------------------------------------------------------

    def respond(self, data: bytes, transport: Transport = "udp") -> bytes | None:
        """Return the reply to the query ``data``, or ``None`` to drop it silently."""
        if len(data) < _HEADER.size:
            log.info("dropped a %d-byte packet: no DNS header", len(data))
            return None
        ident, flags = _HEADER.unpack_from(data)[:2]
        if flags & _QR:
            log.info("dropped a DNS response sent to the server (id %d)", ident)
            return None
        query = self._parse(data, ident, flags)
        if isinstance(query, bytes):
            return query
        reply = self._answer(query)
        return self._fit(reply, query, transport)

    # -- parsing ------------------------------------------------------------------------------

    def _parse(self, data: bytes, ident: int, flags: int) -> _Query | bytes:
        rd = (flags >> 8) & 1
        try:
            record = DNSRecord.parse(data)
        except Exception as exc:  # dnslib raises many types for bad bytes; all mean FORMERR
            log.info("FORMERR for query %d: %.100s", ident, exc)
            return self._error(ident, rd, RCODE.FORMERR)
        if record.header.opcode != 0:
            opcode = record.header.opcode
            return self._error(ident, rd, RCODE.NOTIMP, record.questions[:1], opcode=opcode)
        if len(record.questions) != 1:
            log.info("FORMERR for query %d: %d questions", ident, len(record.questions))
            return self._error(ident, rd, RCODE.FORMERR)
        question = record.questions[0]
        labels = question.qname.label
        if sum(len(label) + 1 for label in labels) + 1 > _WIRE_NAME_MAX or any(
            len(label) > _LABEL_MAX for label in labels
        ):
            # RFC 1035 section 2.3.4; a length octet of 64-191 is not a label at all (its top
            # bits are reserved, RFC 6891 section 5), though dnslib reads one.
            log.info("FORMERR for query %d: a label over 63 octets or a name over 255", ident)
            return self._error(ident, rd, RCODE.FORMERR)
        opts = [rr for rr in record.ar if rr.rtype == _OPT]
        if len(opts) > 1:
            return self._error(ident, rd, RCODE.FORMERR)
        edns = None
        if opts:
            opt = opts[0]
            version = (opt.ttl >> 16) & 0xFF
            edns = max(CLASSIC_UDP_LIMIT, min(int(opt.rclass), self.max_edns_udp))
            if version != 0:
                reply = self._header_only(ident, rd, 0, [question])
                reply.add_ar(EDNS0(udp_len=self.max_edns_udp, ext_rcode=BADVERS >> 4))
                return bytes(reply.pack())
        return _Query(ident, rd, question, edns)

    def _header_only(
        self,
        ident: int,
        rd: int,
        rcode: int,
        questions: list[DNSQuestion] | None = None,
        *,
        opcode: int = 0,
    ) -> DNSRecord:
        header = DNSHeader(id=ident, qr=1, opcode=opcode, aa=0, rd=rd, ra=0, rcode=rcode)
        return DNSRecord(header, questions=list(questions or []))

    def _error(
        self,
        ident: int,
        rd: int,
        rcode: int,
        questions: list[DNSQuestion] | None = None,
        *,
        opcode: int = 0,
    ) -> bytes:
        return bytes(self._header_only(ident, rd, rcode, questions, opcode=opcode).pack())

    # -- answering ----------------------------------------------------------------------------

    def _answer(self, query: _Query) -> tuple[DNSRecord, list[RR]]:
        question = query.question
        qname = str(question.qname).rstrip(".").lower()
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        if question.qclass not in (_IN, _ANY_CLASS) or not self.zone.contains(qname):
            return self._header_only(query.id, query.rd, RCODE.REFUSED, [question]), []
        reply = DNSRecord(
            DNSHeader(id=query.id, qr=1, aa=1, rd=query.rd, ra=0), questions=[question]
        )
        owner: DNSLabel | str = question.qname
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            alias = self.zone.lookup(name, "CNAME")
            if alias and qtype not in ("CNAME", "ANY"):
                reply.add_answer(_to_rr(owner, alias[0]))
                name = str(alias[0].value).rstrip(".").lower()
                owner = name
                if not self.zone.contains(name):
                    return reply, []  # the client resolves an outside target itself
                continue
            break
        if qtype == "ANY":
            return self._answer_any(reply, name)
        found = self.zone.lookup(name, qtype)
        for record in found:
            reply.add_answer(_to_rr(owner, record))
        if not found and not reply.rr:
            self._negative(reply, name)
        return reply, self._glue(found)

    def _answer_any(self, reply: DNSRecord, name: str) -> tuple[DNSRecord, list[RR]]:
        """RFC 8482: one small RRset for ANY, never the name's whole set of records."""
        owned = self.zone.lookup(name, "ANY")
        aliases = [r for r in owned if r.type == "CNAME"]
        if aliases:
            reply.add_answer(_to_rr(reply.q.qname, aliases[0]))
        elif owned:
            ttl = min(r.ttl for r in owned)
            reply.add_answer(RR(reply.q.qname, QTYPE.HINFO, rdata=_RFC8482_HINFO, ttl=ttl))
        else:
            self._negative(reply, name)
        return reply, []

    def _negative(self, reply: DNSRecord, name: str) -> None:
        """No data (the SOA in the authority section), or NXDOMAIN if ``name`` does not exist."""
        soa = self.zone.soa
        minimum = int(soa.value[-1]) if isinstance(soa.value, tuple) else soa.ttl
        negative = Record(soa.name, "SOA", soa.value, min(soa.ttl, minimum))
        reply.add_auth(_to_rr(self.zone.origin, negative))
        if not self.zone.exists(name):
            reply.header.rcode = RCODE.NXDOMAIN

    def _glue(self, records: list[Record]) -> list[RR]:
        glue: list[RR] = []
        for record in records:
            if record.type not in ("MX", "NS"):
                continue
            target = str(record.value[1] if record.type == "MX" else record.value)
            for kind in ("A", "AAAA"):
                glue.extend(_to_rr(r.name, r) for r in self.zone.lookup(target, kind))
        return glue

    def _fit(self, built: tuple[DNSRecord, list[RR]], query: _Query, transport: Transport) -> bytes:
        reply, glue = built
        if query.edns is not None:
            reply.add_ar(EDNS0(udp_len=self.max_edns_udp))
        limit = 65535
        if transport == "udp":
            limit = query.edns if query.edns is not None else CLASSIC_UDP_LIMIT
        packed = bytes(reply.pack())
        if len(packed) > limit:
            short = self._header_only(query.id, query.rd, reply.header.rcode, [query.question])
            short.header.aa = reply.header.aa
            short.header.tc = 1
            if query.edns is not None:
                short.add_ar(EDNS0(udp_len=self.max_edns_udp))
            log.debug("answer of %d bytes over the %d limit: truncated", len(packed), limit)
            return bytes(short.pack())
        if glue:
            with_glue = DNSRecord(
                reply.header,
                questions=list(reply.questions),
                rr=list(reply.rr),
                auth=list(reply.auth),
            )
            for rr in glue:
                with_glue.add_ar(rr)
            for rr in reply.ar:
                with_glue.add_ar(rr)
            fuller = bytes(with_glue.pack())
            if len(fuller) <= limit:
                return fuller
        return packed
