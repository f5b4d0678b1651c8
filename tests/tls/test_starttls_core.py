"""The sans-I/O STARTTLS dialogues: RFC conversations, any byte split, limits, injection."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from wirelab.tls._starttls import NEED_DATA, READY, Send, StartTLSDialogue

#: protocol -> (server replies in order: greeting, then one per client command; commands sent)
CONVERSATIONS: dict[str, tuple[list[bytes], list[bytes]]] = {
    "smtp": (
        [
            b"220-mail.example.com ESMTP\r\n220 welcome\r\n",
            b"250-mail.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            b"220 2.0.0 Ready to start TLS\r\n",
        ],
        [b"EHLO wirelab.localhost\r\n", b"STARTTLS\r\n"],
    ),
    "pop3": (
        [
            b"+OK POP3 ready\r\n",
            b"+OK Capability list follows\r\nUSER\r\nSTLS\r\nUIDL\r\n.\r\n",
            b"+OK Begin TLS negotiation\r\n",
        ],
        [b"CAPA\r\n", b"STLS\r\n"],
    ),
    "imap": (
        [
            b"* OK IMAP4rev1 ready\r\n",
            b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nW1 OK done\r\n",
            b"W2 OK Begin TLS negotiation now\r\n",
        ],
        [b"W1 CAPABILITY\r\n", b"W2 STARTTLS\r\n"],
    ),
    "ftp": (
        [
            b"220-Welcome\r\n this is free text\r\n220 ftp.example.com ready\r\n",
            b"234 AUTH TLS successful\r\n",
        ],
        [b"AUTH TLS\r\n"],
    ),
}


def converse(
    protocol: str, replies: Sequence[bytes], cuts: Sequence[int] = (), *, eof: bool = True
) -> list[bytes]:
    """Drive a dialogue against scripted replies, each fed in pieces; return what it sent."""
    dialogue = StartTLSDialogue(protocol)
    pending = list(replies)
    queue: list[bytes] = []
    sent: list[bytes] = []
    step = 0

    def load_next() -> None:
        nonlocal step
        reply = pending.pop(0)
        size = max(1, cuts[step % len(cuts)]) if cuts else len(reply)
        step += 1
        queue.extend(reply[i : i + size] for i in range(0, len(reply), size))

    load_next()
    for _ in range(10_000):
        event = dialogue.next_event()
        if event is READY:
            return sent
        if isinstance(event, Send):
            sent.append(event.data)
            if pending:
                load_next()
        else:
            assert event is NEED_DATA
            dialogue.receive_data(queue.pop(0) if queue else b"")
    raise AssertionError("the dialogue did not finish")


@pytest.mark.parametrize("protocol", sorted(CONVERSATIONS))
def test_rfc_conversation_reaches_ready(protocol: str) -> None:
    replies, commands = CONVERSATIONS[protocol]
    assert converse(protocol, replies) == commands


@pytest.mark.parametrize("protocol", sorted(CONVERSATIONS))
@given(cuts=st.lists(st.integers(1, 7), min_size=1, max_size=5))
@settings(max_examples=40)
def test_any_split_gives_the_same_conversation(protocol: str, cuts: list[int]) -> None:
    replies, commands = CONVERSATIONS[protocol]
    assert converse(protocol, replies, cuts) == commands


@pytest.mark.parametrize("protocol", sorted(CONVERSATIONS))
@given(data=st.binary(max_size=300), cut=st.integers(1, 50))
@settings(max_examples=60)
def test_arbitrary_bytes_give_events_or_a_protocol_error(
    protocol: str, data: bytes, cut: int
) -> None:
    replies = [data, data, data]
    with contextlib.suppress(RemoteProtocolError):
        converse(protocol, replies, [cut])


def test_imap_greeting_with_capabilities_skips_the_capability_command() -> None:
    replies = [b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", b"W2 OK go\r\n"]
    assert converse("imap", replies) == [b"W2 STARTTLS\r\n"]


def test_pop3_without_capa_still_tries_stls() -> None:
    replies = [b"+OK hi\r\n", b"-ERR unknown command\r\n", b"+OK go\r\n"]
    assert converse("pop3", replies) == [b"CAPA\r\n", b"STLS\r\n"]


def test_ftp_preliminary_120_then_220() -> None:
    replies = [b"120 ready in 1 minute\r\n220 ready\r\n", b"234 go\r\n"]
    assert converse("ftp", replies) == [b"AUTH TLS\r\n"]


@pytest.mark.parametrize(
    ("protocol", "replies", "message", "code"),
    [
        ("smtp", [b"554 go away\r\n"], "refused the session: 554 go away", 554),
        ("smtp", [b"220 hi\r\n", b"250-x\r\n250 8BITMIME\r\n"], "does not offer STARTTLS", None),
        (
            "smtp",
            [b"220 hi\r\n", b"250-x\r\n250 STARTTLS\r\n", b"454 TLS not available\r\n"],
            "refused STARTTLS: 454",
            454,
        ),
        ("smtp", [b"220-a\r\n250 b\r\n"], "changed its reply code", None),
        ("smtp", [b"hello\r\n"], "malformed reply", None),
        ("pop3", [b"-ERR busy\r\n"], "refused the session", None),
        ("pop3", [b"+OK\r\n", b"+OK\r\nUSER\r\n.\r\n"], "does not offer STLS", None),
        ("pop3", [b"+OK\r\n", b"+OK\r\nSTLS\r\n.\r\n", b"-ERR no\r\n"], "refused STLS", None),
        ("imap", [b"* PREAUTH welcome\r\n"], "pre-authenticated", None),
        ("imap", [b"* BYE\r\n"], "refused the session", None),
        ("imap", [b"* OK hi\r\n", b"* CAPABILITY IMAP4rev1\r\nW1 OK\r\n"], "does not offer", None),
        (
            "imap",
            [b"* OK [CAPABILITY STARTTLS] hi\r\n", b"W2 NO nope\r\n"],
            "refused STARTTLS",
            None,
        ),
        ("imap", [b"* OK hi\r\n", b"* CAPABILITY {5}\r\n"], "literal", None),
        ("ftp", [b"220 hi\r\n", b"502 not implemented\r\n"], "refused AUTH TLS: 502", 502),
        ("ftp", [b"421 too many users\r\n"], "refused the session: 421", 421),
    ],
)
def test_refusals_and_broken_replies(
    protocol: str, replies: list[bytes], message: str, code: int | None
) -> None:
    with pytest.raises(RemoteProtocolError, match=message) as caught:
        converse(protocol, replies)
    assert caught.value.code == code


@pytest.mark.parametrize("protocol", sorted(CONVERSATIONS))
def test_server_closing_early_is_an_error(protocol: str) -> None:
    dialogue = StartTLSDialogue(protocol)
    assert dialogue.next_event() is NEED_DATA
    dialogue.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="closed the connection before TLS"):
        dialogue.next_event()


@pytest.mark.parametrize(("protocol", "limit"), [("smtp", 512), ("pop3", 512), ("imap", 8192)])
def test_line_limit(protocol: str, limit: int) -> None:
    dialogue = StartTLSDialogue(protocol)
    dialogue.next_event()
    dialogue.receive_data(b"2" * limit)  # no newline yet, already at the limit
    with pytest.raises(RemoteProtocolError, match=f"line over {limit} bytes"):
        dialogue.next_event()


def test_byte_limit_of_the_whole_dialogue() -> None:
    dialogue = StartTLSDialogue("smtp", max_bytes=1000)
    dialogue.next_event()
    with pytest.raises(RemoteProtocolError, match="over 1000 bytes before TLS"):
        for _ in range(100):
            dialogue.receive_data(b"220-padding\r\n")


def test_reply_line_count_limit() -> None:
    lines = b"250-x\r\n" * 300
    with pytest.raises(RemoteProtocolError, match="over 200 lines"):
        converse("smtp", [b"220 hi\r\n", lines + b"250 STARTTLS\r\n"])


# -- security regressions ------------------------------------------------------------------


def test_security_plaintext_injected_after_go_ahead_is_refused() -> None:
    """CVE-2011-0411 class: bytes after the 220 would be read as if they came over TLS."""
    replies, _ = CONVERSATIONS["smtp"]
    injected = [*replies[:-1], replies[-1] + b"250 injected\r\n"]
    with pytest.raises(RemoteProtocolError, match="after agreeing to start TLS"):
        converse("smtp", injected)


def test_security_plaintext_arriving_after_ready_is_refused() -> None:
    replies, _ = CONVERSATIONS["pop3"]
    dialogue = StartTLSDialogue("pop3")
    for reply in replies:
        while (event := dialogue.next_event()) is not NEED_DATA:
            assert isinstance(event, Send)
        dialogue.receive_data(reply)
    assert dialogue.next_event() is READY
    with pytest.raises(RemoteProtocolError, match="after agreeing"):
        dialogue.receive_data(b"+OK injected\r\n")


def test_security_ehlo_name_cannot_inject_commands() -> None:
    with pytest.raises(LocalProtocolError):
        StartTLSDialogue("smtp", client_name="x\r\nRCPT TO:<a@b>")


def test_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="choose one of smtp, pop3, imap, ftp"):
        StartTLSDialogue("gopher")


def test_security_injected_fragment_without_crlf_is_refused() -> None:
    """The "buffering" variant: a CRLF-free fragment after the go-ahead, glued to later lines."""
    replies, _ = CONVERSATIONS["smtp"]
    injected = [*replies[:-1], replies[-1] + b"250-AUTH PLAIN"]
    with pytest.raises(RemoteProtocolError, match="after agreeing to start TLS"):
        converse("smtp", injected)
