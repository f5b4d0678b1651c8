"""The pi pipeline over real ZeroMQ sockets: no lost message, convergence, clean failures."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import zmq

from wirelab.errors import ConfigError, ConnectError, RemoteProtocolError, Timeout
from wirelab.queue.pipeline import PiResult, run_pi


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _every_point_counted(result: PiResult, points: int) -> None:
    assert sum(result.published.values()) == points
    assert result.points == result.tallied == points
    assert result.published["00"] <= result.inside <= points


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_every_point_is_decided_once(transport: str) -> None:
    result = run_pi(60_000, transport=transport, wire="batch", seed=3)
    _every_point_counted(result, 60_000)
    assert result.error < 0.05
    assert result.messages > 0 and result.messages_per_second > 0
    assert result.endpoints["pub"].startswith(f"{transport}://")


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_the_book_wire_decides_every_point_once(transport: str) -> None:
    """One message per point: published, judged and tallied one by one, none lost."""
    result = run_pi(3000, transport=transport, seed=3)
    assert result.wire == "book" and result.batch == 1
    _every_point_counted(result, 3000)
    # every point is a PUB message and a verdict; 3 in 4 also a request and its reply
    judged = 3000 - result.published["00"]
    assert result.messages == 3000 + 3000 + 2 * judged
    assert result.error < 0.15


def test_the_book_wire_estimate_follows_from_the_book_points() -> None:
    """The tally's count is exactly the number of the seeded 24-bit points inside 2**12."""
    import random

    rng = random.Random(21)
    inside = 0
    for _ in range(2000):
        bits = format(rng.getrandbits(24), "024b")
        x, y = int(bits[::2], 2), int(bits[1::2], 2)
        inside += x * x + y * y < 2**24
    assert run_pi(2000, seed=21).inside == inside


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_no_slow_joiner_loss_with_one_point_per_message(transport: str) -> None:
    """The first messages are published right after the subscribers connect: none is lost."""
    result = run_pi(2500, transport=transport, wire="batch", batch=1, seed=11)
    _every_point_counted(result, 2500)
    assert result.published and sum(result.published.values()) == 2500


def test_same_seed_same_estimate() -> None:
    batched = run_pi(20_000, seed=4, wire="batch")
    assert batched.inside == run_pi(20_000, seed=4, wire="batch", transport="inproc").inside
    assert run_pi(1000, seed=4).inside == run_pi(1000, seed=4, transport="inproc").inside


@pytest.mark.slow
def test_a_million_points_converge_within_a_hundredth() -> None:
    result = run_pi(1_000_000, wire="batch", seed=2024)
    assert abs(result.estimate - math.pi) < 0.01
    _every_point_counted(result, 1_000_000)


def test_fixed_ports_and_an_external_service(pythagoras: str) -> None:
    pub, pull = _free_port(), _free_port()
    result = run_pi(2000, ports={"pub": pub, "pull": pull}, pythagoras=[pythagoras], seed=1)
    _every_point_counted(result, 2000)
    assert result.endpoints == {
        "pythagoras": pythagoras,
        "pub": f"tcp://127.0.0.1:{pub}",
        "pull": f"tcp://127.0.0.1:{pull}",
    }


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConnectError, match=f"cannot bind tcp://127.0.0.1:{port}"):
            run_pi(100, ports={"pub": port})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"points": 0}, "at least one point"),
        ({"batch": 0}, "batch must be"),
        ({"transport": "udp"}, "tcp or inproc"),
        ({"wire": "json"}, "book or batch"),
        ({"transport": "inproc", "ports": {"pub": 6700}}, "no host or port"),
    ],
)
def test_bad_arguments(options: dict[str, object], message: str) -> None:
    points = options.pop("points", 10)
    with pytest.raises(ConfigError, match=message):
        run_pi(points, **options)  # type: ignore[arg-type]


def test_a_service_that_dies_mid_run_times_out_cleanly() -> None:
    """Kill the pythagoras process after the first decisions: a clear Timeout, no hang."""
    script = textwrap.dedent(
        """
        import threading, zmq
        from wirelab.queue.pythagoras import serve_pythagoras
        serve_pythagoras(zmq.Context(), "tcp://127.0.0.1:*", threading.Event(),
                         ready=lambda e: print(e, flush=True))
        """
    )
    service = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    killed = threading.Event()

    def kill_on_progress(done: int, total: int) -> None:
        if not killed.is_set():
            killed.set()
            service.kill()

    try:
        assert service.stdout is not None
        endpoint = service.stdout.readline().strip()
        began = time.monotonic()
        with pytest.raises(Timeout, match=f"pythagoras service at {endpoint} did not answer"):
            run_pi(
                200_000,
                wire="batch",
                batch=100,
                pythagoras=[endpoint],
                timeout=1.0,
                on_progress=kill_on_progress,
            )
        assert killed.is_set() and time.monotonic() - began < 6
    finally:
        service.kill()
        service.wait(10)
        if service.stdout is not None:
            service.stdout.close()
    # The leak check (conftest) fails this test if a pipeline thread is still running.


def test_a_dead_service_among_several_is_dropped_and_no_point_is_lost(
    pythagoras: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens: its requests time out
    result = run_pi(
        20_000, wire="batch", batch=100, pythagoras=[dead, pythagoras], timeout=0.5, seed=5
    )
    _every_point_counted(result, 20_000)
    warnings = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert warnings == [
        f"pythagoras service {dead} did not answer within 0.5 s; asking the 1 other"
    ]


def test_an_external_judge_in_another_process(pythagoras: str) -> None:
    """The judge stage as its own process (`wirelab queue judge`), as on another host."""
    pub, pull = _free_port(), _free_port()
    command = [sys.executable, "-m", "wirelab", "queue", "judge"]
    command += ["--pub", f"tcp://127.0.0.1:{pub}", "--pull", f"tcp://127.0.0.1:{pull}"]
    command += ["--pythagoras", pythagoras, "--idle-exit", "2", "--wire", "batch"]
    judge = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = run_pi(
            20_000,
            wire="batch",
            batch=100,
            ports={"pub": pub, "pull": pull},
            judge=False,
            seed=8,
            timeout=10,
        )
        _every_point_counted(result, 20_000)
        assert result.endpoints["pythagoras"] == "(the external judge's)"
        _, err = judge.communicate(timeout=30)
    finally:
        if judge.poll() is None:
            judge.kill()
            judge.communicate()
    assert judge.returncode == 0, err
    batches = int(err.splitlines()[-1].split()[1].replace(",", ""))
    assert err.splitlines()[-1] == f"judged {batches:,} batches" and batches > 100


def test_no_external_judge_is_a_clear_timeout() -> None:
    with pytest.raises(Timeout, match=r"topics 01, 10, 11 .*is a `wirelab queue judge` running"):
        run_pi(1000, ports={"pub": _free_port(), "pull": _free_port()}, judge=False, timeout=0.5)


def test_no_service_at_all_times_out() -> None:
    with pytest.raises(Timeout, match=r"did not answer within 0\.5 s"):
        run_pi(500, pythagoras=[f"tcp://127.0.0.1:{_free_port()}"], timeout=0.5)


def test_ipv6_loopback() -> None:
    result = run_pi(1000, host="::1", seed=6)
    _every_point_counted(result, 1000)
    assert result.endpoints["pub"].startswith("tcp://[::1]:")


def test_a_service_that_answers_nonsense_stops_the_run_cleanly(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    """A REP peer that is not pythagoras: the judge raises, every stage stops, no hang."""
    rep = context.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    endpoint = rep.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def nonsense() -> None:
        while not stop.is_set():
            if rep.poll(50):
                rep.recv_multipart()
                rep.send(b'{"sums": "lots"}')

    thread = threading.Thread(target=nonsense)
    thread.start()
    try:
        with pytest.raises(RemoteProtocolError, match=r"must hold \d+ sums"):
            run_pi(4000, wire="batch", batch=100, pythagoras=[f"tcp://127.0.0.1:{endpoint}"])
    finally:
        stop.set()
        thread.join(5)
        rep.close()
