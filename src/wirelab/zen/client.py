"""The Zen client (chapter 7, over TCP; the book's F31): ask aphorisms, read answers.

The book's client sent a question, then read with ``recv_until(".")``, which had the same
buffer bug as its servers. :class:`ZenClient` splits answers with the sans-I/O
:class:`~wirelab.zen._core.ZenClientCore`, so it can also pipeline: keep many questions in
flight and match the answers to them in order.

By default it asks one question at a time and waits for its answer, exactly as the book's
``client.py`` does: the book's servers frame a question by "the bytes read so far end with
``?``", so two questions in one read would get one wrong answer. Pipelining is opt-in
(``pipeline=N``) and meant for servers that split on every ``?`` (ours). A pipelined client
sends and reads *at the same time*: one that wrote its whole window before reading would meet
chapter 3's deadlock against a server that stops reading while its answers go unread.
"""

from __future__ import annotations

import logging
import random
import selectors
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from wirelab.errors import Broken, RemoteProtocolError, Timeout
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

#: Bytes asked of the kernel per read while pipelining.
RECV_SIZE = 64 << 10

#: Seconds ``broken_questions`` waits to see whether the server closed after a long question.
CLOSE_WAIT = 2.0


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

        ``pipeline=1`` (the default) asks one question and reads its answer before the next,
        as the book's client does; a larger window is for servers that split on every ``?``.

        Raises:
            Timeout: an answer did not come in time.
            Broken: the server closed or reset the connection with questions outstanding.
            RemoteProtocolError: the server sent something that is not an answer.
        """
        if pipeline > 1:
            return self._ask_pipelined(questions, pipeline)
        done: list[Exchange] = []
        for question in questions:  # the book's way: a question, then its answer
            self._send(self.core.send([question]))
            while self.core.outstanding:
                done.extend(_exchanges(self._receive()))
        return done

    def _ask_pipelined(self, questions: Sequence[str | bytes], window: int) -> list[Exchange]:
        """Keep ``window`` questions in flight, sending and reading as the socket allows.

        Raises:
            Timeout: neither a question went out nor an answer came in for ``timeout``
                seconds (a server that stopped reading and answering).
        """
        timeout = self.sock.gettimeout() or DEFAULT_TIMEOUT
        todo = deque(questions)
        out = bytearray()
        done: list[Exchange] = []
        sent = 0
        self.sock.setblocking(False)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self.sock, selectors.EVENT_READ)
                events = selectors.EVENT_READ
                last_progress = time.monotonic()
                while todo or self.core.outstanding:
                    room = window - len(self.core.outstanding)
                    if todo and room > 0:
                        batch = [todo.popleft() for _ in range(min(room, len(todo)))]
                        out += self.core.send(batch)
                    wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
                    if wanted != events:
                        sel.modify(self.sock, wanted)
                        events = wanted
                    left = last_progress + timeout - time.monotonic()
                    ready = sel.select(max(left, 0.0)) if left > 0 else []
                    if not ready:
                        raise self._stalled(sent, bool(out), timeout)
                    mask = ready[0][1]
                    if mask & selectors.EVENT_WRITE and out:
                        n = self._send_some(out)
                        if n:
                            del out[:n]
                            sent += n
                            last_progress = time.monotonic()
                    if mask & selectors.EVENT_READ:
                        pairs = self._receive_some()
                        if pairs is not None:
                            done.extend(_exchanges(pairs))
                            last_progress = time.monotonic()
        finally:
            if self.sock.fileno() >= 0:
                self.sock.settimeout(timeout)
        return done

    def _stalled(self, sent: int, unsent: bool, timeout: float) -> Timeout:
        waiting = len(self.core.outstanding)
        if unsent:
            return Timeout(
                f"{self.peer} stopped reading our questions and sent no answer for {timeout:g} s "
                f"({sent} bytes sent, {waiting} question(s) unanswered)"
            )
        return Timeout(f"no answer from {self.peer} in {timeout:g} s ({waiting} unanswered)")

    def _send_some(self, data: bytearray) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise Broken(f"{self.peer}: {exc.strerror or exc}") from exc

    def _receive_some(self) -> list[tuple[bytes, bytes]] | None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise Broken(f"{self.peer}: {exc.strerror or exc}") from exc
        if not data:
            raise Broken(
                f"{self.peer} closed the connection with {len(self.core.outstanding)} "
                "question(s) unanswered"
            )
        return self.core.receive_data(data)

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

    def closed_by_peer(self, within: float) -> bool:
        """True when the server closes (or resets) the connection within ``within`` seconds.

        Raises:
            RemoteProtocolError: the server sent more bytes instead.
        """
        previous = self.sock.gettimeout()
        self.sock.settimeout(within)
        try:
            extra = self.sock.recv(4096)
        except TimeoutError:
            return False
        except OSError:
            return True  # a reset
        finally:
            self.sock.settimeout(previous)
        if extra:
            raise RemoteProtocolError(f"{self.peer} sent more than was asked for: {extra!r}")
        return True

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
        # Ours closes after a question over its limit; the book's servers have no limit and
        # keep the connection open: say which, without waiting out the whole timeout.
        closed = client.closed_by_peer(min(timeout, CLOSE_WAIT))
        found.append(
            Exchange("(anything more)", "(connection closed)" if closed else "(connection open)")
        )
    return found


def _exchanges(pairs: list[tuple[bytes, bytes]]) -> list[Exchange]:
    return [Exchange(q.decode("utf-8", "replace"), a.decode("utf-8", "replace")) for q, a in pairs]
