"""The sans-I/O Zen core: named cases and Hypothesis properties."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from wirelab.zen._core import (
    ANSWERS,
    LONGEST_ANSWER,
    MIN_MAX_QUESTION,
    QUESTIONS,
    TOO_LONG,
    UNKNOWN,
    ZenClientCore,
    ZenConfig,
    ZenServerCore,
    answer_for,
    encode_question,
)

KNOWN_ANSWERS = {*ANSWERS.values(), UNKNOWN, TOO_LONG}


def test_each_aphorism_gets_its_answer() -> None:
    core = ZenServerCore()
    assert core.receive_data(b"Beautiful is better than?") == b"Ugly."
    assert core.receive_data(b"Explicit is better than?") == b"Implicit."
    assert core.receive_data(b"Simple is better than?") == b"Complex."
    assert core.receive_data(b"Ugly is better than?") == UNKNOWN
    assert core.questions == 4


def test_pipelined_questions_in_one_read_all_get_answers() -> None:
    # The book's recv_until merged these into one unknown aphorism (BOOK.md 7.1 item 1).
    core = ZenServerCore()
    data = b"".join(QUESTIONS) * 2
    assert core.receive_data(data) == b"Ugly.Implicit.Complex." * 2


def test_bytes_after_the_last_question_wait_for_the_next_read() -> None:
    core = ZenServerCore()
    assert core.receive_data(b"Beautiful is better than?Simple is") == b"Ugly."
    assert core.pending == len(b"Simple is")
    assert core.receive_data(b" better than?") == b"Complex."
    assert core.pending == 0


def test_question_over_the_limit_is_answered_then_closing() -> None:
    core = ZenServerCore(max_question=30)
    out = core.receive_answers(b"Simple is better than?" + b"x" * 40)
    assert out == [b"Complex.", TOO_LONG]
    assert core.closing
    assert core.receive_data(b"Simple is better than?") == b""


def test_limit_counts_the_question_mark() -> None:
    core = ZenServerCore(max_question=30)
    assert core.receive_data(b"x" * 29 + b"?") == UNKNOWN  # 30 bytes: allowed
    assert core.receive_data(b"x" * 30 + b"?") == TOO_LONG  # 31 bytes: over


def test_a_limit_below_the_longest_known_question_is_refused() -> None:
    # Below 25 bytes a known question would be answered whole but refused when split.
    with pytest.raises(ConfigError, match="at least 25"):
        ZenServerCore(max_question=MIN_MAX_QUESTION - 1)
    with pytest.raises(ConfigError, match="at least 25"):
        ZenConfig(max_question=10)
    with pytest.raises(ConfigError):
        ZenServerCore(max_output=LONGEST_ANSWER - 1)


def _drain(core: ZenServerCore, data: bytes) -> bytes:
    """Everything a server sends for ``data``: its backlog too, checking each share's size."""
    out = [core.receive_data(data)]
    while core.backlogged:
        out.append(core.receive_data(b""))
    assert all(len(share) <= core.max_output for share in out)
    assert core.pending < core.max_question  # what stays buffered: less than one question
    return b"".join(out)


def test_a_flood_of_unknown_questions_is_answered_a_share_at_a_time() -> None:
    # 1 byte in, 24 bytes out: one 100,000-byte read must not owe 2.4 MB at once.
    core = ZenServerCore(max_output=4096)
    first = core.receive_data(b"?" * 100_000)
    assert len(first) <= 4096 and core.backlogged
    assert core.pending > 90_000  # the questions not answered yet are kept, not lost
    rest = _drain(core, b"")
    assert (first + rest) == UNKNOWN * 100_000
    assert not core.backlogged and core.pending == 0 and core.questions == 100_000


def test_leading_whitespace_is_ignored_for_typists() -> None:
    assert answer_for(b"\r\nBeautiful is better than?") == b"Ugly."


def test_encode_question_rejects_a_second_question_mark() -> None:
    assert encode_question("Simple is better than") == b"Simple is better than?"
    with pytest.raises(LocalProtocolError):
        encode_question("a?b?")


def test_client_core_matches_answers_to_questions() -> None:
    client = ZenClientCore()
    wire = client.send(["Beautiful is better than?", "Simple is better than?"])
    assert wire == b"Beautiful is better than?Simple is better than?"
    assert client.receive_data(b"Ugly.Comp") == [(b"Beautiful is better than?", b"Ugly.")]
    assert client.receive_data(b"lex.") == [(b"Simple is better than?", b"Complex.")]
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"Extra.")


def test_client_core_bounds_an_answer() -> None:
    client = ZenClientCore(max_answer=10)
    client.send(["x?"])
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"y" * 20)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="idle_timeout"):
        ZenConfig(idle_timeout=0)
    with pytest.raises(ConfigError, match="workers"):
        ZenConfig(workers=0)
    with pytest.raises(ConfigError, match="delay"):
        ZenConfig(delay=-1)


def test_a_question_over_the_limit_after_a_full_share_waits_for_the_next_share() -> None:
    # A share of one answer (max_output 25) then a question over the limit: the TOO_LONG goes
    # in the next share, so no call returns more than max_output bytes.
    core = ZenServerCore(max_question=MIN_MAX_QUESTION, max_output=LONGEST_ANSWER)
    assert core.receive_answers(b"a?" + b"x" * 100) == [UNKNOWN]
    assert core.backlogged and not core.closing
    assert core.receive_answers(b"") == [TOO_LONG]
    assert core.closing and not core.backlogged and core.pending == 0


def test_client_core_matches_a_long_pipeline_in_order() -> None:
    # outstanding is a deque: 100,000 answers are matched in linear time, oldest first.
    client = ZenClientCore()
    questions = [QUESTIONS[i % 3] for i in range(100_000)]
    client.send(questions)
    pairs = client.receive_data(b"".join(ANSWERS[q] for q in questions))
    assert [q for q, _ in pairs] == questions and not client.outstanding


stream = st.lists(st.sampled_from([*QUESTIONS, b"nope?", b" Simple is better than?"]), max_size=40)


@given(stream, st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_any_split_gives_the_same_answers(questions: list[bytes], cuts: list[int]) -> None:
    data = b"".join(questions)
    whole = ZenServerCore().receive_data(data)
    core = ZenServerCore()
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(core.receive_data(piece) for piece in pieces) == whole
    assert whole == b"".join(answer_for(q) for q in questions)


@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.integers(min_value=MIN_MAX_QUESTION, max_value=200),
    st.integers(min_value=LONGEST_ANSWER, max_value=400),
)
def test_arbitrary_bytes_give_answers_or_close_and_stay_bounded(
    chunks: list[bytes], limit: int, max_output: int
) -> None:
    core = ZenServerCore(max_question=limit, max_output=max_output)
    tracemalloc.start()
    try:
        for chunk in chunks:
            share = core.receive_answers(chunk)
            answers = list(share)
            # Every call's share fits in max_output, backlog or not (a core that answered a
            # whole read at once, or appended TOO_LONG to a full share, fails here).
            assert sum(map(len, share)) <= max_output
            while core.backlogged:
                share = core.receive_answers(b"")
                assert sum(map(len, share)) <= max_output
                answers += share
            assert all(a in KNOWN_ANSWERS for a in answers)
            # Memory: what the core keeps after an input is less than one question's limit.
            assert core.pending < limit
            if core.closing:
                assert core.receive_answers(b"Simple is better than?") == []
                break
            assert TOO_LONG not in answers
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The core's whole working set: the input, its split, and the answers (24 bytes of answer
    # per byte of input at worst); never more than a few times that.
    biggest = max((len(c) for c in chunks), default=0)
    assert peak < 64 * 1024 + 200 * biggest


@given(
    st.binary(max_size=600),
    st.lists(st.integers(min_value=0, max_value=600), max_size=20),
    st.integers(min_value=MIN_MAX_QUESTION, max_value=60),
    st.integers(min_value=LONGEST_ANSWER, max_value=200),
)
def test_any_split_of_any_bytes_gives_the_same_answers_under_any_limits(
    data: bytes, cuts: list[int], limit: int, max_output: int
) -> None:
    whole = _drain(ZenServerCore(limit, max_output), data)
    core = ZenServerCore(limit, max_output)
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(_drain(core, piece) for piece in pieces) == whole


@given(st.lists(st.sampled_from(QUESTIONS), min_size=1, max_size=30), st.integers(1, 7))
def test_client_and_server_cores_round_trip(questions: list[bytes], step: int) -> None:
    client, server = ZenClientCore(), ZenServerCore()
    answers = server.receive_data(client.send(questions))
    pairs = []
    for i in range(0, len(answers), step):
        pairs += client.receive_data(answers[i : i + step])
    assert pairs == [(q, ANSWERS[q]) for q in questions]
    assert not client.outstanding
