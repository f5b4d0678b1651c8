"""Every architecture passes the same conformance tests, driven by plain stdlib sockets.

Sequential, pipelined and byte-at-a-time questions; then bad input: a question over the
limit, binary garbage, half a question then silence (idle timeout), a client that never reads
its answers, connections opened and dropped. Through all of it, another client keeps getting
answers (except from ``single``, which serves one client at a time by design).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from wirelab.zen._core import ANSWERS, QUESTIONS, TOO_LONG, UNKNOWN, ZenConfig
from wirelab.zen.archs import ARCHS, RunningServer, start_server

IDLE = 0.3
EVENT_LOOPS = ("selectors", "asyncio-protocol", "asyncio-streams", "uvloop", "prefork")
CONFIG = ZenConfig(idle_timeout=IDLE, max_question=256, max_output=16 << 10, workers=2)
Q = b"Beautiful is better than?"
#: The architectures that serve from threads of this process.
IN_PROCESS_LOGS = (
    "single",
    "threadpool",
    "threaded",
    "selectors",
    "asyncore",
    "asyncio-protocol",
    "asyncio-streams",
    "uvloop",
)


@pytest.fixture(params=list(ARCHS))
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    config = CONFIG
    if request.param == "inetd-wait":
        config = ZenConfig(idle_timeout=IDLE, max_question=256, max_output=16 << 10)
    with start_server(request.param, config=config) as running:
        yield running


def connect(server: RunningServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answers(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b".") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


class Bystander:
    """Another client asking questions all along; it must keep getting answers."""

    def __init__(self, server: RunningServer) -> None:
        self.sock = connect(server)
        self.answered = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zen-bystander")
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.sock.sendall(Q)
                assert read_answers(self.sock, 1) == b"Ugly."
                self.answered += 1
                time.sleep(0.01)
        except BaseException as exc:
            self.failure = exc

    def check(self) -> None:
        before = self.answered
        deadline = time.monotonic() + 5.0
        while self.answered == before and time.monotonic() < deadline and not self.failure:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(10.0)
        self.sock.close()
        assert self.failure is None, f"the other client failed: {self.failure!r}"
        assert self.answered > before, "the other client stopped getting answers"


@pytest.fixture
def bystander(server: RunningServer) -> Iterator[Bystander | None]:
    if not ARCHS[server.arch].concurrent:
        yield None  # one client at a time, by design: nobody else can be served meanwhile
        return
    watcher = Bystander(server)
    yield watcher
    watcher.check()


def test_sequential_questions_on_one_connection(server: RunningServer) -> None:
    with connect(server) as sock:
        for question in [*QUESTIONS, b"Ugly is better than?", *QUESTIONS]:
            sock.sendall(question)
            assert read_answers(sock, 1) == ANSWERS.get(question, UNKNOWN)


def test_pipelined_burst_in_one_send(server: RunningServer, bystander: Bystander | None) -> None:
    questions = [*QUESTIONS, b"nope?"] * 250
    with connect(server) as sock:
        sock.sendall(b"".join(questions))
        expected = b"".join(ANSWERS.get(q, UNKNOWN) for q in questions)
        assert read_answers(sock, len(questions)) == expected


def test_byte_at_a_time(server: RunningServer) -> None:
    with connect(server) as sock:
        for byte in b"Explicit is better than?Simple is better than?":
            sock.send(bytes([byte]))
        assert read_answers(sock, 2) == b"Implicit.Complex."


def test_question_over_the_limit_gets_an_error_and_a_close(
    server: RunningServer, bystander: Bystander | None
) -> None:
    with connect(server) as sock:
        sock.sendall(Q + b"x" * 300)
        assert read_answers(sock, 2) == b"Ugly." + TOO_LONG
        assert closed_by_server(sock, 5.0)


@pytest.mark.parametrize("arch", IN_PROCESS_LOGS)
def test_bad_input_is_one_log_line_per_connection(
    arch: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The servers that run in this process log here; the others log to their own stderr.
    caplog.set_level(logging.INFO, logger="wirelab.zen")
    with start_server(arch, config=CONFIG) as running:
        with connect(running) as sock:
            sock.sendall(b"x" * 300)
            assert read_answers(sock, 1) == TOO_LONG
            assert closed_by_server(sock, 5.0)
        time.sleep(0.1)  # the server may log just after it closed
    lines = [r for r in caplog.records if "question over" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "\n" not in lines[0].getMessage() and lines[0].exc_info is None


def test_a_flood_owing_megabytes_is_answered_in_full_to_a_client_that_reads(
    server: RunningServer,
) -> None:
    # 100,000 one-byte questions owe 2.4 MB of answers: the server answers them a share
    # (max_output) at a time as this client reads, and none is lost.
    count = 100_000
    with connect(server, timeout=20.0) as sock:
        sender = threading.Thread(target=sock.sendall, args=(b"?" * count,))
        sender.start()
        try:
            got = bytearray()
            while len(got) < count * len(UNKNOWN):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
        finally:
            sender.join(20.0)
    assert bytes(got) == UNKNOWN * count


def test_binary_garbage_gets_errors_and_the_connection_survives(
    server: RunningServer, bystander: Bystander | None
) -> None:
    garbage = bytes(range(256)).replace(b"?", b"") + b"?" + b"\x00\xff?\x80?"
    with connect(server) as sock:
        sock.sendall(garbage)
        assert read_answers(sock, 3) == UNKNOWN * 3
        sock.sendall(Q)
        assert read_answers(sock, 1) == b"Ugly."


def test_half_a_question_then_silence_is_dropped_at_the_idle_timeout(
    server: RunningServer, bystander: Bystander | None
) -> None:
    with connect(server) as sock:
        sock.sendall(b"Beautiful is")
        began = time.monotonic()
        assert closed_by_server(sock, 5.0), "the stalled client was never dropped"
        assert time.monotonic() - began >= IDLE * 0.9


def test_client_that_never_reads_is_bounded_then_dropped(
    server: RunningServer, bystander: Bystander | None
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: fills fast
    sock.settimeout(10.0)
    sock.connect(server.address)
    sock.setblocking(False)
    burst = b"x?" * 4096  # 8 KiB of questions, 96 KiB of answers
    sent = 0
    deadline = time.monotonic() + 20.0
    dropped = False
    try:
        while time.monotonic() < deadline:
            try:
                sent += sock.send(burst)
            except BlockingIOError:
                time.sleep(0.02)
            except OSError:
                dropped = True
                break
    finally:
        sock.close()
    assert dropped, f"a client that never reads was kept ({sent} bytes of questions sent)"
    assert sent < 64 << 20


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


#: ``single`` serves one client at a time: the non-readers would keep the bystander out.
IN_PROCESS = tuple(arch for arch in IN_PROCESS_LOGS if arch != "single")


@pytest.mark.parametrize("arch", IN_PROCESS)
def test_answers_owed_to_clients_that_never_read_stay_bounded(arch: str) -> None:
    # One byte in, 24 out: 256 KiB of empty questions owe 6 MiB of answers. A server that
    # answered a whole read at once would hold that for every such client until it dropped it.
    config = ZenConfig(idle_timeout=10.0, max_question=256, max_output=16 << 10, workers=2)
    clients, flood = 10, b"?" * (256 << 10)
    with start_server(arch, config=config) as server:
        before = _rss()
        socks = []
        try:
            for _ in range(clients):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(10.0)
                sock.connect(server.address)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.send(flood)
                socks.append(sock)
            time.sleep(1.0)  # the server reads what it will, answers what it may
            grown = _rss() - before
            if arch != "threadpool":  # its two workers are both taken by non-readers
                with connect(server) as other:  # and it still answers someone who reads
                    other.sendall(Q)
                    assert read_answers(other, 1) == b"Ugly."
        finally:
            for sock in socks:
                sock.close()
    # Unbounded: about 60 MiB. Bounded: a read plus twice max_output per client, about 3 MiB.
    assert grown < 20 << 20, f"{arch} grew by {grown >> 20} MiB for {clients} non-reading clients"


def test_connections_opened_and_dropped(server: RunningServer) -> None:
    # A process per connection is slow to start; event loops take a thousand in stride.
    count = {"inetd-nowait": 20}.get(server.arch, 1000 if server.arch in EVENT_LOOPS else 200)
    for i in range(count):
        sock = socket.create_connection(server.address, timeout=10.0)
        if i % 2:  # half of them with a reset instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if i % 3 == 0:
            sock.send(b"Simple is")
        sock.close()
    with connect(server) as sock:
        sock.sendall(Q)
        assert read_answers(sock, 1) == b"Ugly."


#: The simulated work (the book's sleep in get_answer) per answer, in the delay tests.
DELAY = 0.05
PACED = [arch for arch in ARCHS if not arch.startswith("inetd")]


@pytest.mark.parametrize("arch", PACED)
def test_the_delay_paces_answers_without_holding_up_other_clients(arch: str) -> None:
    config = ZenConfig(idle_timeout=10.0, delay=DELAY, workers=2)
    questions = [*QUESTIONS, b"nope?"] * 3  # 12 answers: 0.6 s of simulated work
    with start_server(arch, config=config) as server, connect(server) as slow:
        began = time.monotonic()
        slow.sendall(b"".join(questions))
        if ARCHS[arch].concurrent:
            # Another client, while the first one's answers are being worked out, is not
            # made to wait for them: its one answer comes after its own delay.
            with connect(server) as other:
                asked = time.monotonic()
                other.sendall(Q)
                assert read_answers(other, 1) == b"Ugly."
                waited = time.monotonic() - asked
            assert waited < len(questions) * DELAY * 0.75, f"the other client waited {waited:.2f} s"
        got = read_answers(slow, len(questions))
        took = time.monotonic() - began
    assert got == b"".join(ANSWERS.get(q, UNKNOWN) for q in questions)
    assert took >= len(questions) * DELAY * 0.9, f"12 answers in {took:.2f} s: not paced"
