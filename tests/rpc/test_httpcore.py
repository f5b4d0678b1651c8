"""The RPC servers' HTTP/1.1 request parser: properties, and the smuggling shapes refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.rpc import _httpcore
from wirelab.rpc._httpcore import NEED_DATA, HTTPError, Request, RequestParser


def parse_all(chunks: list[bytes], **limits: int) -> list[Request | int]:
    """Requests (or the status of the error that ended them) out of ``chunks``."""
    parser = RequestParser(**limits)
    out: list[Request | int] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        while True:
            try:
                request = parser.next_request()
            except HTTPError as exc:
                out.append(exc.status)
                return out
            if request is NEED_DATA:
                break
            assert isinstance(request, Request)
            out.append(request)
    return out


def post(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


WIRE = post(b"<methodCall/>") + post(b"{}", b"Connection: close\r\n")


@given(st.lists(st.integers(0, len(WIRE)), max_size=8))
def test_any_split_gives_the_same_requests(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [WIRE[a:b] for a, b in zip([0, *points], [*points, len(WIRE)], strict=True)]
    requests = parse_all(chunks)
    assert [r.body for r in requests if isinstance(r, Request)] == [b"<methodCall/>", b"{}"]
    assert [r.keep_alive for r in requests if isinstance(r, Request)] == [True, False]


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_requests_or_an_error(data: bytes) -> None:
    for item in parse_all([data], max_head=512, max_body=512):
        assert isinstance(item, Request | int)


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (post(b"x", b"Transfer-Encoding: chunked\r\n"), 411),
        (post(b"x", b"Content-Length: 2\r\n"), 400),  # two lengths that differ
        (post(b"x", b" folded\r\n"), 400),
        (b"POST / HTTP/1.1\r\nHost : x\r\nContent-Length: 0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\nContent-Length: 0\r\n\r\n", 400),  # a bare LF
        (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),  # no Host
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
        (b"POST /" + b"a" * 9000 + b" HTTP/1.1\r\n", 414),
        (b"POST / HTTP/2.0\r\nHost: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ],
)
def test_smuggling_shapes_are_refused(wire: bytes, status: int) -> None:
    assert parse_all([wire]) == [status]


def test_the_same_length_twice_is_one_length() -> None:
    (request,) = parse_all([post(b"ab", b"Content-Length: 2\r\n")])
    assert isinstance(request, Request) and request.body == b"ab"


HEAD_PIECES = [
    b"POST /RPC2 HTTP/1.1\r\n",
    b"GET / HTTP/1.0\r\n",
    b"Host: x\r\n",
    b"Content-Length: 2\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 99999999\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b" folded\r\n",
    b"X: \x00\r\n",
    b"Bad header\r\n",
    b"\n",
    b"\r\n",
    b"ab",
    b"POST / HTTP/1.1\r\n",
]


def _outcomes(wire: bytes, **limits: int) -> list[object]:
    """Each request as plain values (or the error status), for comparing two parses."""
    return [
        (r.method, r.target, r.version, r.headers, r.body, r.keep_alive)
        if isinstance(r, Request)
        else r
        for r in parse_all([wire], **limits)
    ]


@given(
    st.lists(st.sampled_from(HEAD_PIECES), max_size=8),
    st.sampled_from([{}, {"max_body": 2}, {"max_headers": 2}, {"max_line": 16}]),
)
def test_a_head_seen_before_parses_as_a_new_one(
    pieces: list[bytes], limits: dict[str, int]
) -> None:
    """Heads are kept by their bytes and limits (decision 0183): the same outcome from the
    cache as from a parse, whatever was parsed before with other limits."""
    wire = b"".join(pieces) + b"\r\nab" + b"".join(pieces) + b"\r\nab"
    _httpcore._HEADS.clear()
    fresh = _outcomes(wire, **limits)
    _outcomes(wire)  # kept under the default limits too
    assert _outcomes(wire, **limits) == fresh  # this time from the cache


def test_a_refused_head_is_refused_every_time() -> None:
    wire = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    assert isinstance(parse_all([wire])[0], Request)
    assert parse_all([wire], max_body=4) == [413]  # the kept head was judged by other limits
    bad = b"POST / HTTP/1.1\r\nHost : x\r\n\r\n"
    assert parse_all([bad]) == [400] and parse_all([bad]) == [400]
