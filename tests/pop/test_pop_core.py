"""The sans-I/O POP3 core: the command reader under any split, and the session's rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.pop._core import (
    MAX_LINE,
    BadLine,
    CheckApop,
    CheckPassword,
    Close,
    Command,
    CommandReader,
    Commit,
    Fetch,
    Listing,
    POP3Session,
    StartTLS,
    _encode_lines,
    apop_digest,
    encode_multiline,
    uid_for,
)


def _feed_split(data: bytes, cuts: list[int]) -> list[object]:
    reader = CommandReader()
    events: list[object] = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        events += reader.feed(data[start:point])
        start = point
    return events


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=20))
def test_any_bytes_any_split_same_events(data: bytes, cuts: list[int]) -> None:
    whole = CommandReader().feed(data)
    assert _feed_split(data, cuts) == whole
    for event in whole:
        assert isinstance(event, Command | BadLine)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_reader_buffer_is_bounded(data: bytes) -> None:
    reader = CommandReader()
    reader.feed(data)
    assert len(reader._buffer) <= MAX_LINE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_any_command_gets_one_status_line(lines: list[bytes]) -> None:
    session = POP3Session(b"<1.2@x>", tls=True)
    for event in CommandReader().feed(
        b"".join(line.replace(b"\n", b"") + b"\r\n" for line in lines)
    ):
        reply = session.handle(event)
        if reply.action is None:
            assert reply.data.startswith((b"+OK", b"-ERR"))
            assert reply.data.endswith(b"\r\n")


def test_long_line_is_one_bad_line_and_reading_resumes() -> None:
    reader = CommandReader()
    events = reader.feed(b"USER " + b"a" * 5000)
    events += reader.feed(b"zzz\r\nNOOP\r\n")
    assert events == [BadLine("line too long"), Command("NOOP", ())]


def test_user_pass_refused_before_tls_and_apop_allowed() -> None:
    session = POP3Session(b"<1.2@x>", tls_available=True)
    assert session.handle(Command("USER", (b"brandon",))).data.startswith(b"-ERR [AUTH]")
    assert session.handle(Command("PASS", (b"abc123",))).data.startswith(b"-ERR [AUTH]")
    assert "STLS" in session.capabilities() and "USER" not in session.capabilities()
    reply = session.handle(Command("APOP", (b"brandon", b"ABCDEF")))
    assert reply.action == CheckApop("brandon", b"<1.2@x>", "abcdef")
    reply = session.handle(Command("STLS", ()))
    assert isinstance(reply.action, StartTLS)
    assert "USER" in session.capabilities() and "STLS" not in session.capabilities()
    session.handle(Command("USER", (b"brandon",)))
    reply = session.handle(Command("PASS", (b"two", b"words")))
    assert reply.action == CheckPassword("brandon", "two words")


def test_three_failures_close() -> None:
    session = POP3Session(b"<1@x>", tls=True)
    assert session.login_result("a", False).action is None
    assert session.login_result("a", False).action is None
    assert isinstance(session.login_result("a", False).action, Close)


def _logged_in() -> POP3Session:
    session = POP3Session(b"<1@x>", tls=True)
    session.login_result("brandon", True, [Listing("k1", 10), Listing("k2", 20)])
    return session


def test_deletions_only_at_quit_and_rset_undoes() -> None:
    session = _logged_in()
    assert session.handle(Command("DELE", (b"1",))).data.startswith(b"+OK")
    assert session.handle(Command("STAT", ())).data == b"+OK 1 20\r\n"
    assert session.handle(Command("RETR", (b"1",))).data.startswith(b"-ERR")
    assert session.handle(Command("LIST", ())).data == b"+OK 1 messages\r\n2 20\r\n.\r\n"
    session.handle(Command("RSET", ()))
    assert session.handle(Command("STAT", ())).data == b"+OK 2 30\r\n"
    session.handle(Command("DELE", (b"2",)))
    reply = session.handle(Command("QUIT", ()))
    assert reply.action == Commit(("k2",))
    assert session.commit_result(0).data.startswith(b"+OK")


def test_quit_before_login_commits_nothing() -> None:
    reply = POP3Session(b"<1@x>").handle(Command("QUIT", ()))
    assert isinstance(reply.action, Close)


def test_retr_top_uidl() -> None:
    session = _logged_in()
    assert session.handle(Command("RETR", (b"2",))).action == Fetch("k2", None)
    retr = session.handle(Command("RETR", (b"2",))).action
    assert isinstance(retr, Fetch) and retr.size == 20  # the server reads small ones inline
    assert session.handle(Command("TOP", (b"1", b"0"))).action == Fetch("k1", 0)
    assert session.handle(Command("TOP", (b"1",))).data.startswith(b"-ERR")
    assert session.handle(Command("RETR", (b"3",))).data.startswith(b"-ERR")
    assert session.handle(Command("RETR", (b"x",))).data.startswith(b"-ERR")
    assert session.handle(Command("UIDL", (b"1",))).data == b"+OK 1 k1\r\n"


def test_encode_multiline_stuffs_dots_and_top_cuts() -> None:
    data = b"Subject: x\r\n\r\n.one\r\ntwo\r\nthree\r\n"
    assert encode_multiline(data) == b"Subject: x\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n"
    assert encode_multiline(data, 1) == b"Subject: x\r\n\r\n..one\r\n.\r\n"
    assert encode_multiline(data, 0) == b"Subject: x\r\n\r\n.\r\n"


def test_uid_is_printable_and_short() -> None:
    assert uid_for("1.M2P3Q4.host,S=5") == "1.M2P3Q4.host,S=5"
    long = uid_for("x" * 100)
    assert len(long) <= 70 and long.isalnum()
    assert uid_for("a b") != "a b"


def test_apop_digest_matches_rfc_example() -> None:
    # RFC 1939 section 7's example
    stamp = b"<1896.697170952@dbc.mtview.ca.us>"
    assert apop_digest(stamp, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"..", b"x y"]), max_size=40))
def test_whole_message_encoding_equals_the_line_by_line_one(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert encode_multiline(data) == _encode_lines(data)
