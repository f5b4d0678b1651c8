"""The FETCH fast path (decision 0144) sends the very bytes pymap sends, and refuses alike.

Two servers over one store: one with the fast path, one without (``fast_fetch=False``, pymap
alone). Each case sets the same flags on the folder, then runs the same command through a
fresh session on each server and compares the response bytes, untagged updates included.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.imap.conftest import ImapHost
from wirelab.imap import _fastfetch

HOST = "127.0.0.1"
FLAGS = [b"\\Seen", b"\\Flagged", b"\\Answered", b"\\Deleted", b"\\Draft"]
ITEMS = [b"BODY.PEEK[]", b"BODY[]", b"RFC822", b"RFC822.SIZE", b"FLAGS", b"UID"]
COUNT = 6  # messages of ours in INBOX, after the seeded ones


class Raw:
    """An IMAP session over TLS that returns each command's response as bytes."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        sock = socket.create_connection((HOST, port), timeout=10)
        self.sock = context.wrap_socket(sock, server_hostname=HOST)
        self.buf = b""
        self._line()  # the greeting
        self.command(b"L1 LOGIN brandon abc123")

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def _exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def command(self, line: bytes, until: bytes | None = None) -> bytes:
        """Send ``line``; everything up to the reply tagged ``until`` (``line``'s tag)."""
        tag = until or line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        out = b""
        while True:
            got = self._line()
            out += got
            if got.endswith(b"}\r\n") and b"{" in got:
                size = int(got[got.rindex(b"{") + 1 : -3].rstrip(b"+"))
                out += self._exactly(size)
                continue
            if got.startswith(tag + b" ") or got.startswith(b"* BYE"):
                return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"Z LOGOUT\r\n")
        self.sock.close()


@dataclass
class Pair:
    fast: ImapHost
    slow: ImapHost
    uids: list[bytes]

    def run(self, flags: list[frozenset[bytes]], line: bytes, *, readonly: bool) -> list[bytes]:
        """The replies to ``line`` and a NOOP after it (flags as the folder has them now)
        from each server, the folder's flags set to ``flags`` first."""
        answers = []
        for host in (self.fast, self.slow):
            setter = Raw(host.tls_port, host.context())
            try:
                setter.command(b"S1 SELECT INBOX")
                for uid, chosen in zip(self.uids, flags, strict=True):
                    wanted = b" ".join(sorted(chosen))
                    setter.command(b"S2 UID STORE %b FLAGS.SILENT (%b)" % (uid, wanted))
            finally:
                setter.close()
            session = Raw(host.tls_port, host.context())
            try:
                session.command(b"A1 EXAMINE INBOX" if readonly else b"A1 SELECT INBOX")
                answers.append(session.command(line + b"\r\nA3 NOOP", until=b"A3"))
            finally:
                session.close()
        return answers


@pytest.fixture
def pair(make_imap_host: Callable[..., ImapHost]) -> Iterator[Pair]:
    fast = make_imap_host()
    slow = make_imap_host(fast_fetch=False)
    for n in range(COUNT):
        head = f"From: fast@example.com\r\nSubject: fast path {n}\r\n\r\n".encode()
        fast.store.deliver("brandon", head + b"line\r\n" * (n * 7 + 1))
    session = Raw(fast.tls_port, fast.context())
    session.command(b"S1 SELECT INBOX")
    found = session.command(b"S2 UID SEARCH ALL")
    session.close()
    uids = found.split(b"\r\n", 1)[0].split()[2:]
    assert len(uids) >= COUNT
    yield Pair(fast, slow, uids)


@pytest.fixture
def fast_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many responses the fast writer wrote (the server threads share this process)."""
    calls: list[int] = []
    original = _fastfetch.FastFetchOk.write_fast

    async def counted(self: _fastfetch.FastFetchOk, out: object, flush_at: int) -> None:
        calls.append(1)
        await original(self, out, flush_at)

    monkeypatch.setattr(_fastfetch.FastFetchOk, "write_fast", counted)
    return calls


def _sets(top: int) -> st.SearchStrategy[bytes]:
    number = st.one_of(st.integers(1, top).map(lambda n: b"%d" % n), st.just(b"*"))
    part = st.one_of(number, st.tuples(number, number).map(lambda ab: ab[0] + b":" + ab[1]))
    return st.lists(part, min_size=1, max_size=4).map(lambda parts: b",".join(parts))


_items = st.one_of(
    st.sampled_from(ITEMS),
    st.lists(st.sampled_from(ITEMS), min_size=1, max_size=4).map(
        lambda i: b"(" + b" ".join(i) + b")"
    ),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    uid=st.booleans(),
    readonly=st.booleans(),
    data=st.data(),
    items=_items,
)
def test_fast_path_bytes_equal_pymaps(
    pair: Pair, fast_writes: list[int], uid: bool, readonly: bool, data: st.DataObject, items: bytes
) -> None:
    flags = data.draw(
        st.lists(
            st.frozensets(st.sampled_from(FLAGS)), min_size=len(pair.uids), max_size=len(pair.uids)
        )
    )
    top = int(pair.uids[-1]) + 2 if uid else len(pair.uids) + 2
    seq = data.draw(_sets(top))
    line = b"A2 " + (b"UID FETCH " if uid else b"FETCH ") + seq + b" " + items
    before = len(fast_writes)
    fast, slow = pair.run(flags, line, readonly=readonly)
    assert fast == slow, line
    assert b"A2 OK" in fast
    # the fast path answered it (unless an update had to be merged: \Seen just set)
    marks_seen = b"BODY[]" in items or b"RFC822" in items.replace(b"RFC822.SIZE", b"")
    if readonly or not marks_seen:
        assert len(fast_writes) > before, line


def test_body_sets_seen_as_pymap_does(pair: Pair) -> None:
    unseen = [frozenset[bytes]()] * len(pair.uids)
    for line in (
        b"A2 UID FETCH %b (BODY[])" % pair.uids[-1],
        b"A2 FETCH 1:3 (RFC822 FLAGS)",
        b"A2 FETCH 2 BODY[]",
        b"A2 UID FETCH 1:* (UID RFC822.SIZE BODY[])",
    ):
        fast, slow = pair.run(unseen, line, readonly=False)
        assert fast == slow, line
        assert b"\\Seen" in fast


def test_the_commonest_fetch_takes_the_fast_path(pair: Pair, fast_writes: list[int]) -> None:
    session = Raw(pair.fast.tls_port, pair.fast.context())
    session.command(b"A1 EXAMINE INBOX")
    for uid in pair.uids:
        answer = session.command(b"A2 UID FETCH %b (BODY.PEEK[])" % uid)
        assert answer.startswith(b"* ") and b" FETCH (BODY[] {" in answer
        assert answer.endswith(b"A2 OK UID FETCH completed.\r\n")
    session.close()
    assert len(fast_writes) == len(pair.uids)


@pytest.mark.parametrize(
    "line",
    [
        b"A2 FETCH 0 (BODY[])",
        b"A2 FETCH 1: (FLAGS)",
        b"A2 FETCH 1,,2 FLAGS",
        b"A2 FETCH 1, FLAGS",
        b"A2 FETCH 1 (BODY.PEEK[] )",
        b"A2 FETCH 1 ()",
        b"A2 FETCH 1 (FLAGS",
        b"A2 FETCH * FLAGS UID",
        b"A2 uid fetch 1:* (flags)",
        b"A2 UID FETCH 1:* (BODY.PEEK[] BODY.PEEK[] UID UID)",
        b"A2 UID FETCH 1:* (UID FLAGS)",
        b"A2 FETCH 3:1 (RFC822.SIZE)",
        b"A2 FETCH 99999999999999999999 FLAGS",
        b"A2 FETCH 1 BODY.PEEK[]<0.10>",
        b"A2 FETCH 1 (BODY.PEEK[HEADER])",
        b"A2 FETCH 1 FAST",
        b"A2  FETCH 1 FLAGS",
        b"A2 FETCH 1 FLAGS ",
        b"A+2 FETCH 1 FLAGS",
    ],
)
def test_odd_and_bad_lines_answered_as_pymap_does(pair: Pair, line: bytes) -> None:
    flags = [frozenset({FLAGS[n % len(FLAGS)]}) for n in range(len(pair.uids))]
    fast, slow = pair.run(flags, line, readonly=True)
    assert fast == slow


def test_fetch_before_select_is_refused_alike(pair: Pair) -> None:
    answers = []
    for host in (pair.fast, pair.slow):
        session = Raw(host.tls_port, host.context())
        answers.append(session.command(b"A2 UID FETCH 1 (BODY.PEEK[])"))
        session.close()
    assert answers[0] == answers[1]
    assert b"A2 BAD" in answers[0]


def test_delivery_between_fetches_is_announced_alike(pair: Pair) -> None:
    """A message delivered meanwhile: the FETCH carries ``* n EXISTS`` (merged by pymap)."""
    answers = []
    for n, host in enumerate((pair.fast, pair.slow)):
        session = Raw(host.tls_port, host.context())
        session.command(b"A1 EXAMINE INBOX")
        session.command(b"A2 UID FETCH %b (BODY.PEEK[])" % pair.uids[0])
        host.store.deliver("brandon", b"Subject: new %d\r\n\r\nhello\r\n" % n)
        time.sleep(0.15)  # past the racy window of the folder view
        answers.append(session.command(b"A3 FETCH 1 (UID RFC822.SIZE)"))
        session.close()
    assert b"EXISTS" in answers[0]
    # the counts differ (the second server's session sees both deliveries), not the form
    counts = re.compile(rb"\* \d+ (EXISTS|RECENT|FETCH \(FLAGS)")
    assert counts.sub(rb"\1", answers[0]) == counts.sub(rb"\1", answers[1]), answers


_TOKENS = [
    b"A1",
    b"a",
    b"A+",
    b" ",
    b"  ",
    b"UID",
    b"uid",
    b"FETCH",
    b"fetch",
    b"FETCH ",
    b"UID FETCH ",
    b"0",
    b"1",
    b"12",
    b"007",
    b"4294967296",
    b"*",
    b":",
    b",",
    b"(",
    b")",
    b"[",
    b"]",
    b"<0.5>",
    b"HEADER",
    b"FAST",
    *ITEMS,
    b"\r\n",
    b"\n",
    b"{3}",
]


def _equal_commands(fast: Any, pymaps: Any) -> bool:
    return (
        type(fast) is type(pymaps)
        and fast.tag == pymaps.tag
        and fast.sequence_set.uid == pymaps.sequence_set.uid
        and list(fast.sequence_set.value) == list(pymaps.sequence_set.value)
        and list(fast.attributes) == list(pymaps.attributes)
    )


def _pymap_parse(line: bytes) -> Any:
    from pymap.parsing import Params
    from pymap.parsing.commands import Commands
    from pymap.parsing.state import ParsingInterrupt

    try:
        cmd, _ = Commands().parse(memoryview(line), Params())
    except ParsingInterrupt:  # a literal: the line is not a whole command
        return None
    return cmd


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(_TOKENS), max_size=14).map(b"".join),
        st.tuples(
            st.sampled_from([b"A1 FETCH ", b"x UID FETCH ", b"A1 FETCH  ", b"A1 UID FETCH"]),
            _sets(40),
            st.sampled_from([b" ", b" ", b" ", b"", b"  "]),
            _items,
            st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b" \r\n", b")\r\n", b""]),
        ).map(b"".join),
    )
)
def test_recognised_lines_are_exactly_the_commands_pymap_parses(line: bytes) -> None:
    """Whatever the fast parser takes, pymap parses to the same command; what pymap refuses
    (an ``InvalidCommand``), the fast parser does not take."""
    from pymap.parsing import Params
    from pymap.parsing.commands import InvalidCommand

    fast = _fastfetch.recognise(line, Params())
    event("fast path" if fast is not None else "pymap's parser")
    if fast is None:
        return
    pymaps = _pymap_parse(line)
    assert not isinstance(pymaps, InvalidCommand), line
    assert _equal_commands(fast, pymaps), line


def test_the_commonest_shapes_are_recognised() -> None:
    from pymap.parsing import Params

    for line in (
        b"A1 UID FETCH 17 (BODY.PEEK[])\r\n",
        b"A1 FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n",
        b"ABCD12 UID FETCH 1,3:5,9:* RFC822\r\n",
        b"A1 FETCH *:2 BODY[]\r\n",
    ):
        fast = _fastfetch.recognise(line, Params())
        assert fast is not None, line
        assert _equal_commands(fast, _pymap_parse(line)), line
