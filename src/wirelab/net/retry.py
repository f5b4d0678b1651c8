"""Retry with exponential backoff and jitter (policy only: no sockets, clock injectable).

The book's UDP client (chapter 2) waits 0.1 s for a reply, then doubles the wait after each
silence, and gives up once the wait would pass 2 s: five attempts, 0.1 + 0.2 + 0.4 + 0.8 +
1.6 = 3.1 s in all. :class:`Backoff` describes such a schedule (``Backoff()`` with its
defaults *is* the book's, plus jitter), and :func:`retry` runs an operation on it.

Jitter multiplies each wait by a random factor in ``[1 - jitter, 1 + jitter]`` so that many
clients that lost the same packet do not all retry in the same instant.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from wirelab.errors import ConfigError, Timeout

__all__ = ["Backoff", "retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Relative slack when comparing a computed delay with the cap: 0.1 * 3 is 0.30000000000000004.
_EPSILON = 1e-9

#: An attempt that ends less than this before its timeout used it up: no sleep after it.
_MIN_SLEEP = 0.001


@dataclass(frozen=True)
class Backoff:
    """A retry schedule: how long each attempt may wait, and when to give up.

    Attributes:
        initial: the first attempt's wait, in seconds.
        factor: each wait is the previous one times this (1 keeps it constant).
        cap: the schedule ends before the first (un-jittered) wait above ``cap``.
        max_attempts: the schedule ends after this many attempts (None: only ``cap`` and
            ``deadline`` end it).
        deadline: seconds from the first attempt after which no attempt starts; the last
            attempt's wait is shortened to end at the deadline (None: no deadline).
        jitter: each wait is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
        ceiling: the waits stop growing here, and the schedule goes on at this wait until
            ``max_attempts`` or ``deadline`` ends it (None: the waits grow until ``cap``).

    Raises:
        ConfigError: a value out of range, or a schedule that would never end.
    """

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 2.0
    max_attempts: int | None = None
    deadline: float | None = None
    jitter: float = 0.1
    ceiling: float | None = None

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ConfigError(f"backoff initial delay must be above 0, not {self.initial}")
        if not self.factor >= 1:
            raise ConfigError(f"backoff factor must be at least 1, not {self.factor}")
        if not self.cap >= self.initial:
            raise ConfigError(f"backoff cap {self.cap} is below the initial delay {self.initial}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"backoff max_attempts must be at least 1, not {self.max_attempts}")
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError(f"backoff deadline must be above 0, not {self.deadline}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"backoff jitter must be in [0, 1), not {self.jitter}")
        endless = self.factor == 1 or (self.ceiling is not None and self.ceiling <= self.cap)
        if endless and self.max_attempts is None and self.deadline is None:
            raise ConfigError("a backoff whose waits stop growing needs max_attempts or a deadline")
        if self.ceiling is not None and not self.ceiling >= self.initial:
            raise ConfigError(f"backoff ceiling {self.ceiling} is below the initial delay")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the successive waits, jittered; the schedule's length is the attempt count.

        The schedule stops when the next un-jittered wait would be over ``cap``, or after
        ``max_attempts`` waits. ``deadline`` is applied by :func:`retry`, not here.

        Args:
            rng: the source of jitter (tests pass a seeded one); a fresh one by default.
        """
        rng = rng if rng is not None else random.Random()
        delay = self.initial
        ceiling = self.ceiling
        attempts = 0
        while delay <= self.cap * (1 + _EPSILON):
            if self.max_attempts is not None and attempts >= self.max_attempts:
                return
            if self.jitter:
                yield delay * rng.uniform(1 - self.jitter, 1 + self.jitter)
            else:
                yield delay
            attempts += 1
            delay *= self.factor
            if ceiling is not None and delay > ceiling:
                delay = ceiling


def retry(
    fn: Callable[[float], T],
    *,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...] = (Timeout,),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Call ``fn(timeout)`` until it returns, with one attempt per wait of ``backoff``.

    Each attempt gets the current wait as its timeout: the book's UDP client waits that long
    for a reply, and a silence (:class:`~wirelab.errors.Timeout`) means "try again, wait
    longer". An attempt that fails *sooner* than its timeout (a refused connection, say)
    sleeps out the rest of it, so fast failures do not burn through the schedule.

    With a ``deadline``, no attempt starts once it has passed, and the last attempt's timeout
    (and the sleep after a fast failure) is shortened to end at it.

    Args:
        fn: the operation; it gets the timeout for this attempt, in seconds.
        backoff: the schedule.
        retry_on: exceptions that mean "try again"; anything else propagates at once.
        clock: monotonic seconds (tests pass a fake one).
        sleep: waits the given seconds (tests pass one that advances the fake clock).
        rng: the source of jitter.
        on_retry: called before each retry as ``on_retry(failed_attempts, timeout, error)``:
            how many attempts have failed, the next attempt's timeout, and the last error.

    Returns:
        What ``fn`` returned.

    Raises:
        Timeout: every attempt failed; it names the attempts and the time spent, and its
            cause is the last attempt's error.
    """
    began = clock()
    attempts = 0
    last: BaseException | None = None
    rest = 0.0  # what the last attempt left of its timeout, when it failed early
    for delay in backoff.delays(rng):
        if rest >= _MIN_SLEEP:
            sleep(rest)
        timeout = delay
        if backoff.deadline is not None:
            remaining = backoff.deadline - (clock() - began)
            if remaining <= 0:
                break
            timeout = min(delay, remaining)
        if last is not None:
            log.debug("attempt %d failed (%s); retrying with %.3f s", attempts, last, timeout)
            if on_retry is not None:
                on_retry(attempts, timeout, last)
        attempts += 1
        started = clock()
        try:
            return fn(timeout)
        except retry_on as exc:
            last = exc
        rest = timeout - (clock() - started)
    spent = clock() - began
    plural = "attempt" if attempts == 1 else "attempts"
    raise Timeout(f"gave up after {attempts} {plural} over {spent:.1f} s: {last}") from last
