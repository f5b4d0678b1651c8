"""Chapter 11's bank steps in the tour, and how a step that cannot run is skipped."""

from __future__ import annotations

import pytest

from tests.web.conftest import run_tour_steps_of
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import Chapter, TourContext, run_chapters
from wirelab.web import tour_bank
from wirelab.web.browser import unavailable_reason


def test_the_bank_steps_pass(wirelab_lab: LabState, lab_bank: ServiceView) -> None:
    results = run_tour_steps_of(tour_bank, wirelab_lab)
    assert len(results) == 4
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert not failed, failed
    browser_steps = results[2:]
    if unavailable_reason() is None:
        assert all(r.skipped is None for r in browser_steps)
        lines = [line for r in browser_steps for line in r.transcript]
        assert any(line.startswith("xss on insecure: WORKED") for line in lines)
        assert any(line.startswith("xss on hardened: FAILED") for line in lines)
        assert any(line.startswith("csrf on insecure: WORKED") for line in lines)
        assert any(line.startswith("csrf on hardened: FAILED") for line in lines)
    else:
        assert all(r.skipped == unavailable_reason() for r in browser_steps)


def _skipping_chapter() -> Chapter:
    chapter = Chapter(99, "skips")

    @chapter.step("needs a browser")
    def _step(ctx: TourContext) -> None:
        ctx.say("looking for a browser")
        ctx.skip("no Chromium at /nowhere\n(install it)")
        raise AssertionError("skip() returned")

    return chapter


def test_a_skipped_step_is_neither_passed_nor_failed(
    wirelab_lab: LabState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIRELAB_REQUIRE_SERVICES", raising=False)
    (result,) = run_chapters([_skipping_chapter()], wirelab_lab)
    assert result.ok and result.error is None
    assert result.skipped == "no Chromium at /nowhere (install it)"  # one line
    assert result.transcript == ("looking for a browser",)
    assert result.to_json()["skipped"] == result.skipped


def test_a_skip_fails_where_services_are_required(
    wirelab_lab: LabState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRELAB_REQUIRE_SERVICES", "1")
    (result,) = run_chapters([_skipping_chapter()], wirelab_lab)
    assert not result.ok and result.skipped is None
    assert result.error is not None and "no Chromium at /nowhere" in result.error
