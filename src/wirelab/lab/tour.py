"""The tour: run each chapter's steps against a lab and record what happened.

A topic package contributes chapters in its ``tour.py``::

    CHAPTER = Chapter(2, "UDP", "Datagrams, timeouts and backoff.")

    @CHAPTER.step("the client gets an answer")
    def _answer(ctx: TourContext) -> None:
        reply = udp.request(ctx.lab.endpoint("udp").sockaddr, b"hello")
        ctx.say(f"server said {reply!r}")

    CHAPTERS = (CHAPTER,)

A step is the same library call a user would make. It reports with ``ctx.say`` and fails by
raising. Each step runs in a worker thread under a time limit, so one hung step cannot hang
the tour. What the ``wirelab`` loggers say at WARNING or above while a step runs (a server
refusing bad input, say) is kept with that step's result (``StepResult.logs``), so the
transcript shows it in its place. The runner only orders steps and records results; rendering
is the CLI's job.

A step that cannot run here (no browser, say) calls ``ctx.skip("one-line reason")``: the
result is *skipped* with that reason, shown as such, neither passed nor failed, unless
``WIRELAB_REQUIRE_SERVICES=1`` (CI) says everything must run, when a skip is a failure.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from wirelab.errors import WirelabError
from wirelab.lab.state import LabState

__all__ = [
    "Chapter",
    "Step",
    "StepFailed",
    "StepResult",
    "StepSkipped",
    "TourContext",
    "run_chapters",
]

log = logging.getLogger(__name__)

#: Seconds one step may take before the tour gives up on it.
DEFAULT_STEP_TIMEOUT = 60.0

#: Seconds after a step during which the lab's log lines still count as that step's: a server
#: notices a client's close a moment after the client's code has returned.
LOG_SETTLE = 0.05


class StepFailed(WirelabError):
    """A tour step's check did not hold."""


class StepSkipped(WirelabError):
    """A tour step cannot run here; the message says why, in one line."""


class TourContext:
    """What a step gets: the lab, a transcript, and small helpers."""

    def __init__(self, lab: LabState) -> None:
        self.lab = lab
        self.transcript: list[str] = []
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        """Add lines to the step's transcript."""
        with self._lock:
            self.transcript.extend(str(text).splitlines() or [""])

    def check(self, condition: object, message: str) -> None:
        """Fail the step with ``message`` unless ``condition`` is true."""
        if not condition:
            raise StepFailed(message)

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the lab CA."""
        return self.lab.ssl_context()

    def skip(self, reason: str) -> None:
        """End the step as skipped, for ``reason`` (one line): it cannot run here."""
        raise StepSkipped(" ".join(str(reason).split()) or "skipped")


@dataclass(frozen=True)
class Step:
    """One thing the tour does and checks."""

    name: str
    run: Callable[[TourContext], None]
    timeout: float = DEFAULT_STEP_TIMEOUT


@dataclass
class Chapter:
    """A chapter of the book in the tour: its number, title, what it shows, and steps."""

    number: int
    title: str
    summary: str = ""
    steps: list[Step] = field(default_factory=list)

    def step(
        self, name: str, *, timeout: float = DEFAULT_STEP_TIMEOUT
    ) -> Callable[[Callable[[TourContext], None]], Callable[[TourContext], None]]:
        """Decorator: add the function as the chapter's next step."""

        def register(fn: Callable[[TourContext], None]) -> Callable[[TourContext], None]:
            self.steps.append(Step(name, fn, timeout))
            return fn

        return register


@dataclass(frozen=True)
class StepResult:
    """What one step did."""

    chapter: int
    title: str
    step: str
    ok: bool
    seconds: float
    transcript: tuple[str, ...]
    error: str | None = None
    traceback: str | None = None
    logs: tuple[str, ...] = ()
    skipped: str | None = None

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form of one step."""
        return {
            "chapter": self.chapter,
            "title": self.title,
            "step": self.step,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "transcript": list(self.transcript),
            "logs": list(self.logs),
            "error": self.error,
            "skipped": self.skipped,
        }


class _StepLog(logging.Handler):
    """Keeps what the ``wirelab`` loggers say while one step runs, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
        except Exception:  # a bad format string in someone's log call must not end the tour
            self.handleError(record)


def _run_step(chapter: Chapter, step: Step, lab: LabState) -> StepResult:
    ctx = TourContext(lab)
    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            step.run(ctx)
        except BaseException as exc:  # reported in the result, never lost
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"tour-{chapter.number}", daemon=True)
    capture = _StepLog()
    logger = logging.getLogger("wirelab")
    logger.addHandler(capture)
    began = time.perf_counter()
    try:
        worker.start()
        worker.join(step.timeout)
        seconds = time.perf_counter() - began
        time.sleep(LOG_SETTLE)
    finally:
        logger.removeHandler(capture)
    error: str | None = None
    tb: str | None = None
    skipped: str | None = None
    if worker.is_alive():
        error = f"step did not finish within {step.timeout:g} s"
    elif isinstance(outcome.get("error"), StepSkipped):
        if os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0"):
            error = f"skipped, but WIRELAB_REQUIRE_SERVICES=1 needs it to run: {outcome['error']}"
        else:
            skipped = str(outcome["error"])
    elif "error" in outcome:
        exc = outcome["error"]
        error = str(exc) if isinstance(exc, WirelabError) else f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc))
    with ctx._lock:
        lines = tuple(ctx.transcript)
    return StepResult(
        chapter.number,
        chapter.title,
        step.name,
        error is None,
        seconds,
        lines,
        error,
        tb,
        tuple(capture.lines),
        skipped,
    )


def run_chapters(chapters: Iterable[Chapter], lab: LabState) -> Iterator[StepResult]:
    """Run every step of every chapter in order, yielding each result as it is known."""
    for chapter in chapters:
        for step in chapter.steps:
            result = _run_step(chapter, step, lab)
            if not result.ok:
                log.debug("tour step failed: %s\n%s", result.error, result.traceback)
            yield result
