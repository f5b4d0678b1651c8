"""Test-only peers that behave on the wire like the book's chapter 7 Zen programs.

Written from the book's *behaviour* (py3/chapter07 of the book's repository), not its code:

* :class:`BookZenServer` answers like the book's servers. In ``"suffix"`` framing (every
  server built on ``zen_utils.recv_until`` or the same idea: ``srv_single``, ``srv_threaded``,
  ``srv_legacy1``, ``srv_async``, ``srv_asyncio1``, ``srv_asyncio2``) it reads 4096 bytes at a
  time, appending to a buffer, until the *whole buffer* ends with ``?``; it then looks the
  buffer up in the three aphorisms (``Error: unknown aphorism.`` otherwise), sends that answer
  and starts a new buffer. In ``"terminator"`` framing (``srv_legacy2``, asynchat) it splits on
  every ``?`` instead. It has no limit on a question and no timeout, as the book's had none;
  it serves one connection at a time and keeps the connection open until the client closes.
* :func:`book_client` asks like the book's ``client.py``: the three aphorisms in a random
  order, each sent whole, then bytes read until the buffer ends with ``.``; it prints
  ``aphorism answer`` per line (as Python prints two ``bytes``) and closes. With
  ``cause_error`` it sends the first aphorism without its ``?`` and goes away.

Both record a transcript: every chunk that crossed the wire, in order, with its direction.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

#: The book's table (``zen_utils.aphorisms``) and its error text.
APHORISMS = {
    b"Beautiful is better than?": b"Ugly.",
    b"Explicit is better than?": b"Implicit.",
    b"Simple is better than?": b"Complex.",
}
UNKNOWN = b"Error: unknown aphorism."

Framing = Literal["suffix", "terminator"]


@dataclass
class Transcript:
    """What crossed one connection: ``("c>s", bytes)`` or ``("s>c", bytes)`` per chunk."""

    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    closed_by_client: bool = False

    def sent_by(self, direction: str) -> bytes:
        return b"".join(data for d, data in self.chunks if d == direction)

    def messages(self, direction: str) -> list[bytes]:
        """The chunks in one direction, with consecutive ones of that direction joined."""
        out: list[bytes] = []
        last = ""
        for d, data in self.chunks:
            if d == direction and last == direction:
                out[-1] += data
            elif d == direction:
                out.append(data)
            last = d
        return out


class BookZenServer:
    """A server that behaves like the book's (see the module docstring)."""

    def __init__(self, framing: Framing = "suffix") -> None:
        self.framing = framing
        self.transcripts: list[Transcript] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="book-zen-server")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            transcript = Transcript()
            self.transcripts.append(transcript)
            with conn:
                conn.settimeout(0.2)  # only so that the test can stop it; the book waits
                self._converse(conn, transcript)

    def _converse(self, conn: socket.socket, transcript: Transcript) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                transcript.closed_by_client = True
                return
            transcript.chunks.append(("c>s", data))
            buffer += data
            if self.framing == "suffix":
                if not buffer.endswith(b"?"):
                    continue
                questions, buffer = [buffer], b""
            else:
                *complete, buffer = buffer.split(b"?")
                questions = [q + b"?" for q in complete]
            for question in questions:
                answer = APHORISMS.get(question, UNKNOWN)
                conn.sendall(answer)
                transcript.chunks.append(("s>c", answer))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()

    def __enter__(self) -> BookZenServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class BookClientRun:
    """What the book's client printed, and the transcript of its connection."""

    printed: list[str]
    transcript: Transcript
    order: list[bytes]


def book_client(
    address: tuple[str, int],
    *,
    cause_error: bool = False,
    rng: random.Random | None = None,
    timeout: float = 10.0,
) -> BookClientRun:
    """Ask like the book's ``client.py`` (a timeout added, so that a test cannot hang)."""
    transcript = Transcript()
    printed: list[str] = []
    order = list(APHORISMS)
    (rng or random.Random()).shuffle(order)
    with socket.create_connection(address, timeout=timeout) as sock:
        if cause_error:
            first = next(iter(APHORISMS))[:-1]
            sock.sendall(first)
            transcript.chunks.append(("c>s", first))
            return BookClientRun(printed, transcript, [])
        for aphorism in order:
            sock.sendall(aphorism)
            transcript.chunks.append(("c>s", aphorism))
            answer = b""
            while not answer.endswith(b"."):
                data = sock.recv(4096)
                if not data:
                    raise EOFError(f"received {answer!r} then socket closed")
                transcript.chunks.append(("s>c", data))
                answer += data
            printed.append(f"{aphorism!r} {answer!r}")
        # Whatever else the server might send unasked (it must send nothing).
        sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            extra = sock.recv(4096)
            if extra:
                transcript.chunks.append(("s>c", extra))
    transcript.closed_by_client = True
    return BookClientRun(printed, transcript, order)
