"""The chapter 2 request/reply protocol over UDP datagrams (RFC 768), sans-I/O.

The book's server answers every datagram with ``Your data was N bytes long``. We keep that,
and fix its client's weakness: it accepted a late reply to an *earlier* request as the answer.
A request may carry a tag, ``#<id> `` before the payload; the server echoes the tag in its
reply, and the client accepts only the reply that carries its own tag. Untagged requests get
untagged replies, so ``nc -u`` and the book's client still work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wirelab.errors import LocalProtocolError
from wirelab.net.limits import MAX_UDP_PAYLOAD

__all__ = [
    "MAX_REQUEST_ID",
    "Request",
    "encode_request",
    "parse_reply",
    "parse_request",
    "reply_for",
]

#: Request IDs are 1 to 2**32 - 1, written in decimal.
MAX_REQUEST_ID = 2**32 - 1

_TAG = re.compile(rb"#([0-9]{1,10}) ")


@dataclass(frozen=True)
class Request:
    """A parsed request: its tag (``None`` for an untagged one) and payload."""

    request_id: int | None
    payload: bytes


def _tag(request_id: int) -> bytes:
    if not 1 <= request_id <= MAX_REQUEST_ID:
        raise LocalProtocolError(f"request id {request_id} is out of range")
    return b"#%d " % request_id


def encode_request(request_id: int | None, payload: bytes) -> bytes:
    """Return the datagram for ``payload``, tagged with ``request_id`` unless it is None.

    Raises:
        LocalProtocolError: the datagram would not fit in one UDP datagram.
    """
    datagram = payload if request_id is None else _tag(request_id) + payload
    if len(datagram) > MAX_UDP_PAYLOAD:
        raise LocalProtocolError(
            f"a UDP datagram carries at most {MAX_UDP_PAYLOAD} bytes; this one is {len(datagram)}"
        )
    return datagram


def parse_request(datagram: bytes) -> Request:
    """Split a received datagram into its tag and payload (any bytes are a valid request)."""
    match = _TAG.match(datagram)
    if match is not None:
        number = int(match.group(1))
        if 1 <= number <= MAX_REQUEST_ID:
            return Request(number, datagram[match.end() :])
    return Request(None, datagram)


def reply_for(datagram: bytes) -> bytes:
    """The server's answer to one datagram."""
    request = parse_request(datagram)
    text = b"Your data was %d bytes long" % len(request.payload)
    return text if request.request_id is None else _tag(request.request_id) + text


def parse_reply(datagram: bytes, request_id: int | None) -> str | None:
    """Return the reply text if ``datagram`` answers request ``request_id``, else ``None``.

    A reply to another request (a late answer to an earlier one) gives ``None``; the client
    then keeps waiting for its own.
    """
    reply = parse_request(datagram)
    if reply.request_id != request_id:
        return None
    return reply.payload.decode("utf-8", errors="replace")
