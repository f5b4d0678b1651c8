"""HTTP/1.1 requests for RPC (RFC 9112), sans-I/O: bytes in, whole requests (or an error) out.

An RPC request is a POST with a ``Content-Length`` body, and nothing else is needed, so this
parser is strict and small (h11 costs more per request than the XML-RPC call it carries; see
docs/decisions/0181). It refuses, with the status RFC 9112 names:

* a request line that is not ``METHOD SP TARGET SP HTTP/1.x`` (400), over ``max_line``
  (414); a head over ``max_head`` bytes or ``max_headers`` fields (431);
* a line ending that is not CRLF, a field without a colon, whitespace before the colon, an
  obsolete line folding (section 5.2), control characters in a value (400): the shapes
  request smuggling is made of (section 11.2);
* ``Transfer-Encoding`` of any kind (411: a length is required; section 6.3 lets a server
  refuse what it does not implement), a ``Content-Length`` that is not 1 to 20 digits or two
  that differ (400, section 6.3), a body over ``max_body`` (413, before it is read);
* HTTP/1.1 without ``Host`` (400, RFC 9112 section 3.2);
* an ``Expect`` other than ``100-continue`` (417, RFC 9110 section 10.1.1; ignored in an
  HTTP/1.0 request, as that section requires).

A head that asks for ``100-continue`` is shown as :attr:`RequestParser.head` while its body
has not begun to arrive (:attr:`Head.expects_continue`), so the server can refuse it on its
head alone or invite the body with a ``100 Continue``; a body over the limit is refused from
the ``Content-Length`` alone (413), before a byte of it is sent.

After an error the parser is finished: the connection answers it and closes.
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass

__all__ = [
    "CONTINUE",
    "NEED_DATA",
    "HTTPError",
    "Head",
    "Request",
    "RequestParser",
    "encode_response",
]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
#: Control characters but tab, CR and LF (those are checked on their own).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: ``name ":" OWS value OWS`` (RFC 9112 section 5): no whitespace before the colon.
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    411: b"Length Required",
    413: b"Content Too Large",
    414: b"URI Too Long",
    415: b"Unsupported Media Type",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
}


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: :meth:`RequestParser.next_request` needs more bytes.
NEED_DATA = _NeedData()


class HTTPError(Exception):
    """The request breaks a rule: answer ``status`` with ``message`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: The interim response that invites a request's body (RFC 9110 section 15.2.1).
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Head:
    """The head of a request whose body is still to come."""

    method: bytes
    target: bytes
    version: bytes
    headers: dict[bytes, bytes]  # lower-case names; a repeated field's values joined by ", "
    length: int

    @property
    def expects_continue(self) -> bool:
        """True when the client waits for ``100 Continue`` before it sends the body."""
        return self.version == b"HTTP/1.1" and b"expect" in self.headers


@dataclass(frozen=True)
class Request:
    """One whole request."""

    method: bytes
    target: bytes
    version: bytes
    headers: dict[bytes, bytes]  # lower-case names; a repeated field's values joined by ", "
    body: bytes

    @property
    def keep_alive(self) -> bool:
        """True when the connection may carry another request (RFC 9112 section 9.3)."""
        tokens = {t.strip().lower() for t in self.headers.get(b"connection", b"").split(b",")}
        if self.version == b"HTTP/1.1":
            return b"close" not in tokens
        return b"keep-alive" in tokens


#: Heads parsed before, by their bytes and the limits they were judged by. An RPC client sends
#: the same head for every call of a kind (method, path, fields, length), and a head's parse
#: is a function of those alone, so a head seen before is not parsed again (decision 0183).
#: Only heads that passed are kept; at most ``_HEADS_KEPT`` of at most ``_HEADS_LONGEST``
#: bytes (about 0.5 MiB), and the lot is dropped when full. A kept head, its ``headers``
#: included, is shared by every request that had it: nobody changes one after its parse.
_HEADS: dict[tuple[bytes, int, int, int], Head] = {}
_HEADS_KEPT = 512
_HEADS_LONGEST = 1024


class RequestParser:
    """Requests out of the bytes of one connection.

    Args:
        max_body: the largest body, bytes.
        max_head: the largest head (request line and fields), bytes.
        max_line: the longest request line, bytes.
        max_headers: the most header fields.
    """

    def __init__(
        self,
        *,
        max_body: int = 1 << 20,
        max_head: int = 16 << 10,
        max_line: int = 8 << 10,
        max_headers: int = 100,
    ) -> None:
        self.max_body = max_body
        self.max_head = max_head
        self.max_line = max_line
        self.max_headers = max_headers
        self._buffer = bytearray()
        self._head: Head | None = None
        self._failed: HTTPError | None = None

    @property
    def started(self) -> bool:
        """True while part of a request has arrived (a 408 is owed if time runs out)."""
        return bool(self._buffer) or self._head is not None

    @property
    def head(self) -> Head | None:
        """The head of the request being received, while its body has not begun to arrive."""
        return self._head if self._head is not None and not self._buffer else None

    def receive_data(self, data: bytes) -> None:
        """Take bytes the client sent."""
        self._buffer += data

    def next_request(self) -> Request | _NeedData:
        """The next whole request, or :data:`NEED_DATA`.

        Raises:
            HTTPError: the request breaks a rule (then every later call raises it too).
        """
        if self._failed is not None:
            raise self._failed
        try:
            return self._next()
        except HTTPError as exc:
            self._failed = exc
            raise

    def _next(self) -> Request | _NeedData:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                self._check_partial_head()
                return NEED_DATA
            if end + 4 > self.max_head:
                raise HTTPError(431, "request header fields too large")
            lines = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            key = (lines, self.max_line, self.max_headers, self.max_body)
            head = _HEADS.get(key)
            if head is None:
                head = self._parse_head(lines)
                if len(lines) <= _HEADS_LONGEST:
                    if len(_HEADS) >= _HEADS_KEPT:
                        _HEADS.clear()
                    _HEADS[key] = head
            self._head = head
        head = self._head
        length = head.length
        if len(self._buffer) < length:
            return NEED_DATA
        if len(self._buffer) == length:
            body = bytes(self._buffer)
            self._buffer.clear()
        else:
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
        self._head = None
        return Request(head.method, head.target, head.version, head.headers, body)

    def _check_partial_head(self) -> None:
        buffered = self._buffer
        line_end = buffered.find(b"\r\n")
        if (line_end < 0 and len(buffered) > self.max_line) or line_end > self.max_line:
            raise HTTPError(414, "request line too long")
        if len(buffered) > self.max_head:
            raise HTTPError(431, "request header fields too large")

    def _parse_head(self, head: bytes) -> Head:
        # Whole-head checks first, each one scan in C: every line ends in CRLF, and no
        # control character (but tab) anywhere.
        crlf = head.count(b"\r\n")
        if head.count(b"\r") != crlf or head.count(b"\n") != crlf:
            raise HTTPError(400, "a line ending that is not CRLF")
        if _CONTROL.search(head):
            raise HTTPError(400, "a control character in the request head")
        lines = head.split(b"\r\n")
        request_line = lines[0]
        if len(request_line) > self.max_line:
            raise HTTPError(414, "request line too long")
        parts = request_line.split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
            raise HTTPError(400, "not a request line")
        method, target, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise HTTPError(400, "not HTTP/1.0 or HTTP/1.1")
        if len(lines) - 1 > self.max_headers:
            raise HTTPError(431, "too many request header fields")
        headers: dict[bytes, bytes] = {}
        lengths: set[bytes] = set()
        for line in lines[1:]:
            field = _FIELD.fullmatch(line)
            if field is None:
                if line[:1] in (b" ", b"\t"):
                    raise HTTPError(400, "obsolete line folding")
                raise HTTPError(400, "a header field without a name and a colon")
            key = field[1].lower()
            value = field[2]
            if key == b"content-length":
                lengths.add(value)
            headers[key] = headers[key] + b", " + value if key in headers else value
        if b"transfer-encoding" in headers:
            raise HTTPError(411, "send a Content-Length, not a Transfer-Encoding")
        if version == b"HTTP/1.1" and b"host" not in headers:
            raise HTTPError(400, "HTTP/1.1 without Host")
        if b"expect" in headers:
            if version != b"HTTP/1.1":
                del headers[b"expect"]  # RFC 9110 section 10.1.1: ignored in HTTP/1.0
            elif headers[b"expect"].lower() != b"100-continue":
                raise HTTPError(417, "the only expectation met is 100-continue")
        length = 0
        if lengths:
            (text,) = lengths if len(lengths) == 1 else (b"",)
            if not (text.isdigit() and 1 <= len(text) <= 20):
                raise HTTPError(400, "a Content-Length that is not one number")
            length = int(text)
            headers[b"content-length"] = text
        if length > self.max_body:
            raise HTTPError(413, "request body too large")
        return Head(method, target, version, headers, length)


_date_cache: list[tuple[int, bytes]] = [(0, b"")]


def _http_date() -> bytes:
    """Now as an HTTP date (RFC 9110 section 5.6.7), computed once a second."""
    now = int(time.time())
    second, text = _date_cache[0]
    if second != now:
        text = email.utils.formatdate(now, usegmt=True).encode("ascii")
        _date_cache[0] = (now, text)
    return text


def encode_response(
    status: int, body: bytes, content_type: bytes, *, server: bytes, close: bool = False
) -> bytes:
    """The bytes of a whole HTTP/1.1 response (with ``Date``: RFC 9110 section 6.6.1)."""
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error")),
        b"Server: " + server,
        b"Date: " + _http_date(),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
    ]
    if close:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body
