"""HTTP/1.1 response parsing (RFC 9112), sans-I/O: bytes in, one :class:`Response` out.

The book's ``search4.py`` printed whatever came back, chunk-size lines included. This parser
reads the status line, the header fields and the body, framed the way RFC 9112 section 6.3
says: no body for ``HEAD``, 1xx, 204 and 304; ``Transfer-Encoding: chunked`` (which wins over
any Content-Length); else ``Content-Length``; else everything until the server closes.
Interim 1xx responses are skipped. Every part has a limit; anything malformed raises
:class:`~wirelab.errors.RemoteProtocolError`, and nothing else escapes.

Use::

    parser = ResponseParser(method="GET")
    while (event := parser.next_event()) is NEED_DATA:
        parser.receive_data(sock.recv(65536))     # b"" at EOF
    response = event
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from wirelab.errors import RemoteProtocolError

__all__ = [
    "MAX_BODY",
    "MAX_HEADERS",
    "MAX_LINE",
    "NEED_DATA",
    "Response",
    "ResponseParser",
]

#: Longest status line, header line or chunk-size line.
MAX_LINE = 8 << 10

#: Most header fields (and trailer fields) in one response.
MAX_HEADERS = 100

#: Largest body accepted: a geocoder answer is a few kilobytes.
MAX_BODY = 4 << 20

_STATUS = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: ASCII digits only (``str.isdigit`` accepts "²"), and few enough for ``int()``.
_LENGTH = re.compile(r"[0-9]{1,20}", re.ASCII)
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?")


class _Need(enum.Enum):
    NEED_DATA = "NEED_DATA"


#: Returned by :meth:`ResponseParser.next_event` until a whole response has arrived.
NEED_DATA = _Need.NEED_DATA


@dataclass(frozen=True)
class Response:
    """A complete response."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    framing: str  # "chunked", "content-length", "until-close" or "none"
    chunks: int = 0

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header field called ``name`` (case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), default)


class ResponseParser:
    """Parses one response to a request made with ``method``."""

    def __init__(
        self,
        *,
        method: str = "GET",
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_body: int = MAX_BODY,
    ) -> None:
        self.method = method.upper()
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_body = max_body
        self._buffer = bytearray()
        self._eof = False
        self._done: Response | None = None

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the connection; ``b""`` means the server closed it."""
        if not data:
            self._eof = True
        else:
            self._buffer += data

    def next_event(self) -> Response | _Need:
        """The response once it is complete, else :data:`NEED_DATA`.

        Raises:
            RemoteProtocolError: the bytes break HTTP/1.1, a limit, or end too early.
        """
        if self._done is None:
            self._done = self._try_parse()
        return NEED_DATA if self._done is None else self._done

    # -- the parser: re-run from the start of the buffer until it has everything --------------

    def _line(self, start: int) -> tuple[bytes, int] | None:
        end = self._buffer.find(b"\n", start, start + self.max_line + 1)
        if end < 0:
            if len(self._buffer) - start > self.max_line:
                raise RemoteProtocolError(f"a line is longer than {self.max_line} bytes")
            if self._eof:
                raise RemoteProtocolError("the server closed the connection mid-response")
            return None
        return bytes(self._buffer[start:end]).rstrip(b"\r"), end + 1

    def _fields(self, pos: int) -> tuple[list[tuple[str, str]], int] | None:
        fields: list[tuple[str, str]] = []
        while True:
            got = self._line(pos)
            if got is None:
                return None
            line, pos = got
            if not line:
                return fields, pos
            if len(fields) >= self.max_headers:
                raise RemoteProtocolError(f"more than {self.max_headers} header fields")
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise RemoteProtocolError(f"malformed header line {line[:60]!r}")
            fields.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))

    def _try_parse(self) -> Response | None:
        pos = 0
        while True:
            got = self._line(pos)
            if got is None:
                return None
            line, pos = got
            match = _STATUS.fullmatch(line)
            if match is None:
                raise RemoteProtocolError(f"malformed status line {line[:60]!r}")
            if match.group(1) != b"1":
                raise RemoteProtocolError(f"unsupported HTTP version in {line[:60]!r}")
            status = int(match.group(3))
            parsed = self._fields(pos)
            if parsed is None:
                return None
            headers, pos = parsed
            if 100 <= status < 200 and status != 101:
                continue  # an interim response: the real one follows
            break
        version = f"HTTP/{match.group(1).decode()}.{match.group(2).decode()}"
        reason = (match.group(4) or b"").decode("latin-1")
        lowered = [(k.lower(), v) for k, v in headers]
        body = self._body(pos, status, lowered)
        if body is None:
            return None
        data, framing, chunks = body
        return Response(version, status, reason, tuple(headers), data, framing, chunks)

    def _body(
        self, pos: int, status: int, headers: list[tuple[str, str]]
    ) -> tuple[bytes, str, int] | None:
        if self.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b"", "none", 0
        codings = [v.strip().lower() for k, v in headers if k == "transfer-encoding"]
        codings = [c.strip() for value in codings for c in value.split(",") if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                raise RemoteProtocolError(f"unsupported transfer coding {codings[-1]!r}")
            return self._chunked(pos)
        lengths = {v.strip() for k, v in headers if k == "content-length"}
        if lengths:
            if len(lengths) > 1 or not all(_LENGTH.fullmatch(x) for x in lengths):
                raise RemoteProtocolError(f"bad Content-Length {sorted(lengths)!r}")
            size = int(lengths.pop())
            if size > self.max_body:
                raise RemoteProtocolError(f"a body of {size} bytes is over {self.max_body}")
            if len(self._buffer) - pos < size:
                if self._eof:
                    raise RemoteProtocolError("the server closed the connection mid-body")
                return None
            return bytes(self._buffer[pos : pos + size]), "content-length", 0
        if len(self._buffer) - pos > self.max_body:
            raise RemoteProtocolError(f"a body over {self.max_body} bytes")
        if not self._eof:
            return None
        return bytes(self._buffer[pos:]), "until-close", 0

    def _chunked(self, pos: int) -> tuple[bytes, str, int] | None:
        parts: list[bytes] = []
        total = 0
        while True:
            got = self._line(pos)
            if got is None:
                return None
            line, pos = got
            match = _CHUNK.fullmatch(line)
            if match is None:
                raise RemoteProtocolError(f"malformed chunk size line {line[:40]!r}")
            size = int(match.group(1), 16)
            if size == 0:
                trailers = self._fields(pos)  # trailer fields are read and dropped
                if trailers is None:
                    return None
                return b"".join(parts), "chunked", len(parts)
            total += size
            if total > self.max_body:
                raise RemoteProtocolError(f"a chunked body over {self.max_body} bytes")
            if len(self._buffer) < pos + size + 2:
                if self._eof:
                    raise RemoteProtocolError("the server closed the connection mid-chunk")
                return None
            if self._buffer[pos + size : pos + size + 2] != b"\r\n":
                raise RemoteProtocolError("a chunk is not followed by CRLF")
            parts.append(bytes(self._buffer[pos : pos + size]))
            pos += size + 2
