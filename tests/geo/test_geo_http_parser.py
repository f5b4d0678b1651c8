"""The sans-I/O HTTP/1.1 response parser: round trips, any split, bad bytes, limits."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.errors import RemoteProtocolError
from wirelab.geo._http import NEED_DATA, Response, ResponseParser


def parse(
    data: bytes, *, splits: list[int] | None = None, eof: bool = True, **kw: object
) -> Response:
    parser = ResponseParser(**kw)  # type: ignore[arg-type]
    cuts = [*sorted({c % (len(data) + 1) for c in splits or []}), len(data)]
    start = 0
    for cut in cuts:
        parser.receive_data(data[start:cut]) if cut > start else None
        start = cut
        event = parser.next_event()
        if event is not NEED_DATA:
            assert isinstance(event, Response)
            return event
    if eof:
        parser.receive_data(b"")
    event = parser.next_event()
    assert isinstance(event, Response), event
    return event


def build(
    status: int, headers: list[tuple[str, str]], body: bytes, chunks: list[int] | None
) -> bytes:
    head = f"HTTP/1.1 {status} Whatever\r\n".encode()
    head += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
    if chunks is None:
        return head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    out, pos = [head + b"Transfer-Encoding: chunked\r\n\r\n"], 0
    for size in chunks:
        piece = body[pos : pos + size]
        if piece:
            out.append(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        pos += size
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    out.append(b"0\r\nX-Trailer: yes\r\n\r\n")
    return b"".join(out)


names = st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)
values = st.from_regex(r"[ -~]{0,30}", fullmatch=True).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from([200, 201, 400, 404, 500]),
    headers=st.lists(st.tuples(names, values), max_size=5),
    body=st.binary(max_size=3000),
    chunks=st.one_of(st.none(), st.lists(st.integers(1, 700), max_size=8)),
    splits=st.lists(st.integers(0, 10_000), max_size=10),
)
def test_round_trip_under_any_split(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    chunks: list[int] | None,
    splits: list[int],
) -> None:
    wire = build(status, headers, body, chunks)
    whole = parse(wire, eof=False)
    assert whole.status == status and whole.body == body
    assert whole.framing == ("content-length" if chunks is None else "chunked")
    for name, _value in headers:
        assert whole.header(name) is not None
    assert parse(wire, splits=splits, eof=False) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=5))
def test_arbitrary_bytes_give_a_response_or_a_protocol_error(
    data: bytes, splits: list[int]
) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse(data, splits=splits, max_body=1000)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_after_a_status_line(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse(b"HTTP/1.1 200 OK\r\n" + data, max_body=1000)


def test_interim_responses_are_skipped() -> None:
    wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert parse(wire).body == b"ok"


def test_head_204_304_have_no_body() -> None:
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method="HEAD").body == b""
    assert parse(b"HTTP/1.1 204 No Content\r\n\r\n", eof=False).framing == "none"
    assert parse(b"HTTP/1.1 304 Not Modified\r\n\r\n", eof=False).body == b""


def test_body_until_close() -> None:
    got = parse(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert got.body == b"all of it" and got.framing == "until-close" and got.version == "HTTP/1.0"


def test_chunked_wins_over_content_length() -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
    assert parse(wire, eof=False).body == b"ok"


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n", "over"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "closed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "mid-chunk"),
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/3.0 200 OK\r\n\r\n", "version"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", "header fields"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 10_000 + b"\r\n\r\n", "longer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed"),
    ],
)
def test_malformed_and_over_limit(wire: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        parse(wire, max_body=1 << 20)
