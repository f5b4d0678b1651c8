"""The Zen client (chapter 7, over TCP; the book's F31): ask aphorisms, read answers.

The book's client sent a question, then read with ``recv_until(".")``, which had the same
buffer bug as its servers. :class:`ZenClient` splits answers with the sans-I/O
:class:`~wirelab.zen._core.ZenClientCore`, so it can pipeline: send many questions in one
write and match the answers to them in order.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from wirelab.errors import Broken, Timeout
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import DEFAULT_TIMEOUT
from wirelab.zen._core import (
    DEFAULT_MAX_QUESTION,
    QUESTIONS,
    ZenClientCore,
    random_questions,
)

__all__ = ["Exchange", "ZenClient", "ask", "broken_questions", "pipelined_questions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exchange:
    """One question and the answer the server gave."""

    question: str
    answer: str


class ZenClient:
    """A connection to a Zen server."""

    def __init__(self, host: str, port: int | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = connect_tcp(host, port, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.core = ZenClientCore()
        self.peer = format_address(self.sock.getpeername())
        self.local = format_address(self.sock.getsockname())

    def ask(self, questions: Sequence[str | bytes], *, pipeline: int = 1) -> list[Exchange]:
        """Ask every question, keeping up to ``pipeline`` of them in flight; answers in order.

        Raises:
            Timeout: an answer did not come in time.
            Broken: the server closed or reset the connection with questions outstanding.
            RemoteProtocolError: the server sent something that is not an answer.
        """
        window = max(1, pipeline)
        done: list[Exchange] = []
        todo = list(questions)
        while todo or self.core.outstanding:
            room = window - len(self.core.outstanding)
            if todo and room > 0:
                batch, todo = todo[:room], todo[room:]
                self._send(self.core.send(batch))
            for question, answer in self._receive():
                done.append(Exchange(question.decode("utf-8", "replace"), answer.decode()))
        return done

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (for showing how a server handles broken input)."""
        self._send(data)

    def read_raw(self) -> bytes:
        """Read whatever arrives next (``b""`` when the server has closed)."""
        try:
            return self.sock.recv(4096)
        except TimeoutError as exc:
            raise Timeout(f"no answer from {self.peer} in time") from exc
        except OSError as exc:
            raise Broken(f"{self.peer}: {exc.strerror or exc}") from exc

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise Timeout(f"{self.peer} is not reading our questions") from exc
        except OSError as exc:
            raise Broken(f"{self.peer}: {exc.strerror or exc}") from exc

    def _receive(self) -> list[tuple[bytes, bytes]]:
        data = self.read_raw()
        if not data:
            raise Broken(
                f"{self.peer} closed the connection with {len(self.core.outstanding)} "
                "question(s) unanswered"
            )
        return self.core.receive_data(data)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> ZenClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def ask(
    host: str,
    port: int | str,
    questions: Sequence[str | bytes] | None = None,
    *,
    pipeline: int = 1,
    rng: random.Random | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Exchange]:
    """Connect, ask ``questions`` (default: the three aphorisms in random order), close."""
    with ZenClient(host, port, timeout=timeout) as client:
        return client.ask(
            questions if questions is not None else random_questions(rng), pipeline=pipeline
        )


def pipelined_questions(count: int, rng: random.Random | None = None) -> list[bytes]:
    """``count`` questions cycling through the aphorisms, in a random order."""
    order = random_questions(rng)
    return [order[i % len(QUESTIONS)] for i in range(count)]


def broken_questions(
    host: str, port: int | str, *, timeout: float = DEFAULT_TIMEOUT
) -> list[Exchange]:
    """Show the server's error handling (``-e``): an unknown aphorism, then one too long.

    The server answers the first with ``Error: unknown aphorism.`` and keeps the connection;
    it answers the second (over its 1 KiB limit) with ``Error: question too long.`` and
    closes. The last exchange's answer is ``(connection closed)`` when it did.
    """
    found: list[Exchange] = []
    with ZenClient(host, port, timeout=timeout) as client:
        found += client.ask([b"Ugly is better than?"])
        long_question = b"Beautiful " + b"x" * DEFAULT_MAX_QUESTION + b"?"
        client.send_raw(long_question)
        data = b""
        while not data.endswith(b"."):
            chunk = client.read_raw()
            if not chunk:
                break
            data += chunk
        label = f"({len(long_question)} bytes)"
        found.append(Exchange(label, data.decode("utf-8", "replace")))
        found.append(
            Exchange("(anything more)", "(connection closed)" if not client.read_raw() else "?")
        )
    return found
