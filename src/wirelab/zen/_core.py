"""The Zen question-and-answer protocol (chapter 7, over TCP, RFC 9293), sans-I/O.

A client sends an aphorism that ends in ``?``; the server answers with a text that ends in
``.``. A connection carries any number of questions and ends when the client closes::

    client: Beautiful is better than?      server: Ugly.
    client: Explicit is better than?       server: Implicit.
    client: Simple is better than?         server: Complex.
    client: anything else?                 server: Error: unknown aphorism.

The book's ``recv_until`` waited until the *whole buffer* ended with ``?``, so two questions
that arrived in one read became one unknown aphorism and the second answer was never sent;
its buffer also grew without limit. :class:`ZenServerCore` splits on *every* ``?``, keeps the
bytes after the last one for the next read, and caps a question at ``max_question`` bytes: a
longer one gets ``Error: question too long.`` and the connection must close.

Answers are bounded too. An unknown question is cheap to send and dear to answer (``?`` is
one byte, ``Error: unknown aphorism.`` 24), so one 256 KiB read could owe 6 MiB of answers to
a client that never reads them. One call answers at most ``max_output`` bytes' worth of
questions and keeps the rest of the input (:attr:`ZenServerCore.backlogged`); the adapter
sends what it got, waits until the peer has taken it, and calls again with ``b""``.

Nothing here touches a socket or a clock. The book's simulated work (a sleep in
``get_answer``) is :attr:`ZenConfig.delay`, which the adapters apply, each in its own way.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from wirelab.net.limits import DEFAULT_IDLE_TIMEOUT

__all__ = [
    "ANSWERS",
    "DEFAULT_MAX_ANSWER",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MAX_QUESTION",
    "LONGEST_ANSWER",
    "MIN_MAX_QUESTION",
    "QUESTIONS",
    "TOO_LONG",
    "UNKNOWN",
    "ZenClientCore",
    "ZenConfig",
    "ZenServerCore",
    "answer_for",
    "encode_question",
    "expected_answer",
    "random_questions",
]

#: The three aphorisms the book's server knows, question (with ``?``) -> answer (with ``.``).
ANSWERS: dict[bytes, bytes] = {
    b"Beautiful is better than?": b"Ugly.",
    b"Explicit is better than?": b"Implicit.",
    b"Simple is better than?": b"Complex.",
}

#: The questions, in the book's order.
QUESTIONS: tuple[bytes, ...] = tuple(ANSWERS)

#: The answer to a question the server does not know (the book's text).
UNKNOWN = b"Error: unknown aphorism."

#: The answer to a question over the limit; the server closes the connection after it.
TOO_LONG = b"Error: question too long."

#: Longest question accepted by default, ``?`` included. The known ones are 22-25 bytes;
#: 1 KiB leaves room for anything a person types and bounds every connection's buffer.
DEFAULT_MAX_QUESTION = 1024

#: The longest question the server knows, ``?`` included (25 bytes): no limit may be lower,
#: or a known question would be answered whole but refused when split over two reads.
MIN_MAX_QUESTION = max(len(question) for question in ANSWERS)

#: The longest answer the server ever sends (25 bytes: ``Error: question too long.``).
LONGEST_ANSWER = max(len(answer) for answer in (*ANSWERS.values(), UNKNOWN, TOO_LONG))

#: Longest answer a client accepts (the longest real one is 25 bytes).
DEFAULT_MAX_ANSWER = 1024

#: Answer bytes a server queues for one client that does not read before it stops reading
#: that client's questions (and, if the client stays stuck, drops it at the idle timeout).
DEFAULT_MAX_OUTPUT = 64 << 10

_WHITESPACE = b" \t\r\n"
_GET = ANSWERS.get
#: The same table keyed without the ``?``, for the hot path (``split`` removes it).
_GET_BARE = {question[:-1]: answer for question, answer in ANSWERS.items()}.get


@dataclass(frozen=True)
class ZenConfig:
    """Limits and behaviour shared by every server architecture.

    Attributes:
        max_question: longest question in bytes, ``?`` included.
        max_output: answer bytes queued for a client before its reading pauses.
        idle_timeout: seconds a connection may make no progress before it is closed.
        delay: seconds of simulated work per answer (the book's sleep in ``get_answer``).
        workers: threads (threadpool, default 4 as in the book) or processes (prefork,
            default one per CPU); ``None`` for the architecture's default.
        max_threads: the bound on threads of the thread-per-connection server.
        max_connections: connections held at once by the event-loop servers.
    """

    max_question: int = DEFAULT_MAX_QUESTION
    max_output: int = DEFAULT_MAX_OUTPUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    delay: float = 0.0
    workers: int | None = None
    max_threads: int = 1024
    max_connections: int = 20_000

    def __post_init__(self) -> None:
        """Refuse limits that cannot work.

        Raises:
            ConfigError: a limit below its minimum, or a negative delay.
        """
        if self.max_question < MIN_MAX_QUESTION:
            raise ConfigError(f"max_question must be at least {MIN_MAX_QUESTION} bytes")
        if self.max_output < LONGEST_ANSWER:
            raise ConfigError(f"max_output must be at least {LONGEST_ANSWER} bytes")
        if self.idle_timeout <= 0:
            raise ConfigError("idle_timeout must be positive")
        if self.delay < 0:
            raise ConfigError("delay must not be negative")
        if self.workers is not None and self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if self.max_threads < 1:
            raise ConfigError("max_threads must be at least 1")
        if self.max_connections < 1:
            raise ConfigError("max_connections must be at least 1")


def answer_for(question: bytes) -> bytes:
    """Return the answer to one complete question (``?`` included).

    Leading whitespace is ignored, so that a person typing into ``nc`` (a newline after each
    question) gets the same answers as a program.
    """
    found = _GET(question)
    if found is not None:
        return found
    return _GET(question.lstrip(_WHITESPACE), UNKNOWN)


class ZenServerCore:
    """One server-side connection: bytes in, answers out.

    Feed it whatever ``recv`` returned; it returns the answers owed for every question that is
    now complete, in order (``b""`` when none is). Bytes after the last ``?`` wait for the next
    call. Once a question is over the limit, :attr:`closing` is true: the answers returned by
    that call end with :data:`TOO_LONG`, everything later is ignored, and the adapter must
    close the connection after sending them.

    One call returns at most ``max_output`` bytes of answers. When the input owed more,
    :attr:`backlogged` is true and the questions not yet answered are kept: send what was
    returned, let the peer take it, then call ``receive_data(b"")`` for the next share,
    reading nothing new from that peer until :attr:`backlogged` is false again.

    Attributes:
        max_question: the limit, ``?`` included.
        max_output: the most answer bytes one call returns.
        closing: a question broke the limit; send what was returned, then close.
        backlogged: complete questions wait for the next call (with ``b""``).
        questions: how many questions were answered.
    """

    __slots__ = (
        "_buffer",
        "_max_parts",
        "backlogged",
        "closing",
        "max_output",
        "max_question",
        "questions",
    )

    def __init__(
        self, max_question: int = DEFAULT_MAX_QUESTION, max_output: int = DEFAULT_MAX_OUTPUT
    ) -> None:
        if max_question < MIN_MAX_QUESTION:
            raise ConfigError(f"max_question must be at least {MIN_MAX_QUESTION} bytes")
        if max_output < LONGEST_ANSWER:
            raise ConfigError(f"max_output must be at least {LONGEST_ANSWER} bytes")
        self.max_question = max_question
        self.max_output = max_output
        self._max_parts = max_output // LONGEST_ANSWER
        self.closing = False
        self.backlogged = False
        self.questions = 0
        self._buffer = b""

    @property
    def pending(self) -> int:
        """Bytes received and not answered yet (an unfinished question, or a backlog)."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> bytes:
        """Take bytes from the peer; return the answers now owed, joined (maybe ``b""``)."""
        if len(data) <= MIN_MAX_QUESTION and not self._buffer and not self.closing:
            # The common case, one whole known question per read: a single dict lookup (not
            # tried on longer reads, which cannot be one known question: no hashing them).
            found = _GET(data)
            if found is not None:
                self.questions += 1
                return found
        if self.closing:
            return b""
        # The pipelined case: every question known, nothing over a limit, one join. Any
        # surprise (an unknown question makes the join meet None) takes the careful path.
        whole = self._buffer + data if self._buffer else data
        parts = whole.split(b"?", self._max_parts)
        rest = parts.pop()
        if len(rest) < self.max_question and (len(parts) < self._max_parts or b"?" not in rest):
            try:
                out = b"".join(map(_GET_BARE, parts))  # type: ignore[arg-type]
            except TypeError:
                pass
            else:
                self._buffer = rest
                self.backlogged = False
                self.questions += len(parts)
                return out
        self._buffer = b""
        return b"".join(self.receive_answers(whole))

    def receive_answers(self, data: bytes) -> list[bytes]:
        """Take bytes from the peer; return the answers now owed, one item per question."""
        if self.closing:
            return []
        if self._buffer:
            data = self._buffer + data if data else self._buffer
        # At most one call's share of questions; the rest stays unsplit (no quadratic work).
        parts = data.split(b"?", self._max_parts)
        rest = parts.pop()
        limit = self.max_question
        # A full share with more input behind it waits for the next call, even when that input
        # is a question over the limit: its TOO_LONG must not push this share past max_output.
        self.backlogged = len(parts) == self._max_parts and (b"?" in rest or len(rest) >= limit)
        answers: list[bytes] = []
        for part in parts:
            found = _GET_BARE(part)
            if found is None:
                # The split removed the "?": the question is one byte longer than ``part``.
                if len(part) >= limit:
                    return self._too_long(answers)
                found = answer_for(part + b"?")
            answers.append(found)
        if len(rest) >= limit and not self.backlogged:
            return self._too_long(answers)
        self._buffer = rest
        self.questions += len(answers)
        return answers

    def _too_long(self, answers: list[bytes]) -> list[bytes]:
        self.questions += len(answers)
        self.closing = True
        self.backlogged = False
        self._buffer = b""
        answers.append(TOO_LONG)
        return answers


def encode_question(text: str | bytes) -> bytes:
    """Return the wire form of one question: ``text`` with exactly one ``?``, at the end.

    Raises:
        LocalProtocolError: ``text`` has a ``?`` before its end, so the server would read two
            questions.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    body = raw[:-1] if raw.endswith(b"?") else raw
    if b"?" in body:
        raise LocalProtocolError(f"a question may hold only one '?', at its end: {raw!r}")
    return body + b"?"


def expected_answer(question: bytes) -> bytes:
    """The answer a correct server gives to ``question`` (wire form, ``?`` included)."""
    return answer_for(question)


def random_questions(rng: random.Random | None = None) -> list[bytes]:
    """The three aphorisms in random order, as the book's client asks them."""
    questions = list(QUESTIONS)
    (rng or random.Random()).shuffle(questions)
    return questions


class ZenClientCore:
    """The client side: questions out, answers in (split on ``.``, bounded).

    Attributes:
        outstanding: questions sent and not yet answered, oldest first.
    """

    def __init__(self, max_answer: int = DEFAULT_MAX_ANSWER) -> None:
        self.max_answer = max_answer
        self.outstanding: deque[bytes] = deque()
        self._buffer = b""

    def send(self, questions: Sequence[str | bytes]) -> bytes:
        """Record ``questions`` as outstanding and return the bytes to send for them."""
        wire = [encode_question(q) for q in questions]
        self.outstanding.extend(wire)
        return b"".join(wire)

    def receive_data(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Take bytes from the server; return ``(question, answer)`` pairs now complete.

        Raises:
            RemoteProtocolError: an answer over ``max_answer`` bytes, or an answer that no
                question asked for.
        """
        data = self._buffer + data
        parts = data.split(b".")
        rest = parts.pop()
        if len(rest) >= self.max_answer:
            raise RemoteProtocolError(f"answer longer than {self.max_answer} bytes")
        self._buffer = rest
        pairs = []
        for part in parts:
            if len(part) >= self.max_answer:
                raise RemoteProtocolError(f"answer longer than {self.max_answer} bytes")
            if not self.outstanding:
                raise RemoteProtocolError(f"an answer nobody asked for: {part + b'.'!r}")
            pairs.append((self.outstanding.popleft(), part + b"."))
        return pairs

    @property
    def pending(self) -> int:
        """Bytes of an unfinished answer held for the next read."""
        return len(self._buffer)
