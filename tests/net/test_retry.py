"""Backoff schedules and retry(), on a fake clock: no test here sleeps more than a few ms."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.errors import ConfigError, ConnectionRefused, Timeout
from wirelab.net.retry import Backoff, retry

BOOK = [0.1, 0.2, 0.4, 0.8, 1.6]


class FakeClock:
    """A monotonic clock that moves only when told to (or when someone 'sleeps' on it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SilentServer:
    """An operation that waits its whole timeout and hears nothing, like a dead UDP server."""

    def __init__(self, clock: FakeClock, answer_on: int | None = None) -> None:
        self.clock = clock
        self.answer_on = answer_on
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if len(self.timeouts) == self.answer_on:
            self.clock.now += timeout / 2
            return "reply"
        self.clock.now += timeout
        raise Timeout(f"no reply within {timeout:.2f} s")


def test_the_book_schedule() -> None:
    delays = list(Backoff(jitter=0).delays())
    assert delays == pytest.approx(BOOK)
    assert sum(delays) == pytest.approx(3.1)


def test_the_defaults_are_the_book_schedule_with_jitter() -> None:
    delays = list(Backoff().delays(random.Random(7)))
    assert len(delays) == 5
    for delay, base in zip(delays, BOOK, strict=True):
        assert base * 0.9 <= delay <= base * 1.1


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.001, 1.0),
    st.floats(1.0, 4.0),
    st.floats(1.0, 50.0),
    st.floats(0.0, 0.99),
    st.integers(0, 2**32),
)
def test_jitter_stays_within_its_bounds(
    initial: float, factor: float, cap_ratio: float, jitter: float, seed: int
) -> None:
    backoff = Backoff(initial, factor, initial * cap_ratio, max_attempts=50, jitter=jitter)
    bases = list(Backoff(initial, factor, initial * cap_ratio, max_attempts=50, jitter=0).delays())
    delays = list(backoff.delays(random.Random(seed)))
    assert len(delays) == len(bases) >= 1
    for delay, base in zip(delays, bases, strict=True):
        assert base * (1 - jitter) - 1e-12 <= delay <= base * (1 + jitter) + 1e-12
        assert base <= initial * cap_ratio * (1 + 1e-9)


def test_jitter_actually_varies_and_is_reproducible() -> None:
    backoff = Backoff(jitter=0.5)
    first = list(backoff.delays(random.Random(1)))
    assert first == list(backoff.delays(random.Random(1)))
    assert first != pytest.approx(BOOK)


def test_max_attempts_and_float_rounding_at_the_cap() -> None:
    assert len(list(Backoff(jitter=0, max_attempts=3).delays())) == 3
    # 0.1 * 3 is 0.30000000000000004: still "at the cap", not over it.
    assert list(Backoff(0.1, 3.0, 0.3, jitter=0).delays()) == pytest.approx([0.1, 0.3])
    constant = Backoff(0.5, 1.0, 0.5, max_attempts=4, jitter=0)
    assert list(constant.delays()) == [0.5] * 4


def test_a_ceiling_keeps_the_waits_and_goes_on_until_max_attempts() -> None:
    patient = Backoff(jitter=0, ceiling=1.6, max_attempts=8)
    assert list(patient.delays()) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 1.6, 1.6, 1.6])
    # A ceiling above the cap changes nothing: the cap still ends the schedule.
    assert list(Backoff(jitter=0, ceiling=5.0).delays()) == pytest.approx(BOOK)


def test_retry_gives_up_like_the_book() -> None:
    clock = FakeClock()
    server = SilentServer(clock)
    with pytest.raises(Timeout, match=r"gave up after 5 attempts over 3\.1 s") as info:
        retry(server, backoff=Backoff(jitter=0), clock=clock, sleep=clock.sleep)
    assert server.timeouts == pytest.approx(BOOK)
    assert isinstance(info.value.__cause__, Timeout)
    assert "1.60" in str(info.value.__cause__)  # the last attempt's error is the cause
    assert clock.sleeps == []  # a silence uses up its timeout: nothing left to sleep


def test_retry_returns_the_first_answer_and_reports_retries() -> None:
    clock = FakeClock()
    server = SilentServer(clock, answer_on=3)
    seen: list[tuple[int, float, str]] = []
    result = retry(
        server,
        backoff=Backoff(jitter=0),
        clock=clock,
        sleep=clock.sleep,
        on_retry=lambda n, timeout, exc: seen.append((n, timeout, str(exc))),
    )
    assert result == "reply"
    assert server.timeouts == pytest.approx([0.1, 0.2, 0.4])
    assert [(n, round(t, 3)) for n, t, _ in seen] == [(1, 0.2), (2, 0.4)]
    assert seen[0][2] == "no reply within 0.10 s"


def test_deadline_shrinks_the_last_timeout() -> None:
    clock = FakeClock()
    server = SilentServer(clock)
    with pytest.raises(Timeout, match=r"gave up after 4 attempts over 1\.0 s"):
        retry(server, backoff=Backoff(jitter=0, deadline=1.0), clock=clock, sleep=clock.sleep)
    # 0.1 + 0.2 + 0.4 = 0.7 s spent: the fourth attempt gets 0.3 s, not 0.8; no fifth.
    assert server.timeouts == pytest.approx([0.1, 0.2, 0.4, 0.3])


def test_no_attempt_starts_past_the_deadline() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def slow(timeout: float) -> None:
        calls.append(timeout)
        clock.now += 5.0  # overran its timeout and the whole deadline
        raise Timeout("late")

    with pytest.raises(Timeout, match=r"gave up after 1 attempt over 5\.0 s"):
        retry(slow, backoff=Backoff(jitter=0, deadline=1.0), clock=clock, sleep=clock.sleep)
    assert calls == [0.1]


def test_fast_failures_sleep_out_their_slot() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def refused(timeout: float) -> None:
        calls.append(clock.now)
        raise ConnectionRefused("nothing listens")

    with pytest.raises(Timeout, match="gave up after 5 attempts") as info:
        retry(
            refused,
            backoff=Backoff(jitter=0),
            retry_on=(ConnectionRefused,),
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])  # none after the last attempt
    assert [round(t - 1000.0, 3) for t in calls] == [0.0, 0.1, 0.3, 0.7, 1.5]
    assert isinstance(info.value.__cause__, ConnectionRefused)


def test_other_errors_are_not_retried() -> None:
    calls: list[float] = []

    def broken(timeout: float) -> None:
        calls.append(timeout)
        raise ValueError("a bug, not a silence")

    with pytest.raises(ValueError, match="a bug"):
        retry(broken, backoff=Backoff(jitter=0))
    assert calls == [0.1]


def test_retry_with_the_real_clock_is_quick_for_a_quick_schedule() -> None:
    attempts: list[float] = []

    def flaky(timeout: float) -> int:
        attempts.append(timeout)
        if len(attempts) < 3:
            raise Timeout("not yet")
        return len(attempts)

    began = time.monotonic()
    assert retry(flaky, backoff=Backoff(0.001, 2.0, 0.01, jitter=0)) == 3
    assert time.monotonic() - began < 1.0  # slept out 1 + 2 ms, no more


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0},
        {"factor": 0.5},
        {"initial": 1.0, "cap": 0.5},
        {"max_attempts": 0},
        {"deadline": 0},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"factor": 1.0},  # would retry forever
        {"ceiling": 1.0},  # so would this
        {"ceiling": 0.05, "max_attempts": 3},  # below the first wait
    ],
)
def test_bad_backoffs_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(**kwargs)  # type: ignore[arg-type]
