"""The chapter 2 request/reply protocol over UDP datagrams (RFC 768), sans-I/O.

The book's server answers every datagram with ``Your data was N bytes long``, and its client
sends plain bytes and takes whatever its server sends back. That is our default too, byte for
byte, so our client works against the book's ``udp_remote.py`` server and the book's client
against ours.

The book's client has a weakness: it would take a late reply to an *earlier* request as the
answer. An opt-in mode shows the cure: a request may carry a tag, ``#<id> `` before the
payload; our server echoes the tag in its reply, and a tagging client accepts only the reply
that carries its own tag. A server that does not echo tags (the book's) answers untagged, and
the tagging client says so instead of waiting. Untagged requests get untagged replies, so
``nc -u`` and the book's client see the book's bytes. (One corner: a plain request that itself
begins with ``#<digits> `` is read as tagged by our server.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wirelab.errors import LocalProtocolError, RemoteProtocolError
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

    With ``request_id=None`` (the book's protocol) every datagram is the answer, as it is.
    With a tag, a reply to another request (a late answer to an earlier one) gives ``None``;
    the client then keeps waiting for its own.

    Raises:
        RemoteProtocolError: a tagged request got an untagged reply: the server does not echo
            request IDs (the book's ``udp_remote.py`` server does not).
    """
    if request_id is None:
        return datagram.decode("utf-8", errors="replace")
    reply = parse_request(datagram)
    if reply.request_id is None:
        raise RemoteProtocolError(
            f"the server answered {datagram[:60]!r} without echoing request ID {request_id}: "
            "it does not number its replies (the book's server does not); ask without "
            "--request-id"
        )
    if reply.request_id != request_id:
        return None
    return reply.payload.decode("utf-8", errors="replace")
