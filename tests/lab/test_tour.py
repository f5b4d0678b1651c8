"""The tour runner and ``wirelab tour``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from wirelab.config import Account
from wirelab.lab.state import LabState
from wirelab.lab.tour import Chapter, Step, TourContext, run_chapters


def _empty_lab(tmp_path: Path) -> LabState:
    return LabState((), str(tmp_path / "ca.pem"), (Account("u", "p"),), str(tmp_path))


def test_results_record_pass_fail_and_hang(tmp_path: Path) -> None:
    chapter = Chapter(99, "Test", "a chapter for tests")

    @chapter.step("passes")
    def _ok(ctx: TourContext) -> None:
        ctx.say("hello\nworld")

    @chapter.step("fails a check")
    def _bad(ctx: TourContext) -> None:
        ctx.check(1 + 1 == 3, "arithmetic is broken")

    def _hang(ctx: TourContext) -> None:
        time.sleep(0.5)

    chapter.steps.append(Step("hangs", _hang, timeout=0.1))

    results = list(run_chapters([chapter], _empty_lab(tmp_path)))
    assert [r.ok for r in results] == [True, False, False]
    assert results[0].transcript == ("hello", "world")
    assert results[1].error == "arithmetic is broken"
    assert results[2].error == "step did not finish within 0.1 s"
    assert all(r.chapter == 99 and r.seconds >= 0 for r in results)
    time.sleep(0.5)  # let the abandoned step end before the leak check


def test_lab_log_lines_stay_with_their_step(tmp_path: Path) -> None:
    chapter = Chapter(98, "Logs", "")
    server_log = logging.getLogger("wirelab.test.server")

    @chapter.step("a server refuses something")
    def _refuses(ctx: TourContext) -> None:
        # Logged from another thread, as a lab server would, and just after the step returns.
        threading.Timer(0.01, server_log.warning, ("refused %s", "a 4 GiB block")).start()
        server_log.info("too quiet to keep")

    @chapter.step("a quiet step")
    def _quiet(ctx: TourContext) -> None:
        ctx.say("nothing logged")

    first, second = run_chapters([chapter], _empty_lab(tmp_path))
    assert first.logs == ("wirelab.test.server: refused a 4 GiB block",)
    assert second.logs == ()
    assert first.to_json()["logs"] == ["wirelab.test.server: refused a 4 GiB block"]


def test_tour_transcript_shows_server_logs_in_place() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wirelab", "tour", "--chapter", "5", "--fresh"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "log: wirelab.data.blocks:" in done.stdout
    assert "wirelab.data.blocks" not in done.stderr  # not printed twice, out of place


def test_tour_json_for_one_chapter_on_the_running_lab(wirelab_env: dict[str, str]) -> None:
    """On the session lab (no second lab started: ``--fresh`` is the test above)."""
    done = subprocess.run(
        [sys.executable, "-m", "wirelab", "tour", "--chapter", "2", "--json"],
        env=wirelab_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "using the running lab" in done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["steps"]
    for step in report["steps"]:
        assert {"chapter", "step", "ok", "seconds"} <= set(step)
        assert step["chapter"] == 2 and step["ok"] is True


def test_unknown_chapter_is_an_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wirelab", "tour", "--chapter", "42"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "the tour has no chapter 42" in done.stderr
