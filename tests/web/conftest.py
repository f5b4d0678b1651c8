"""Chapter 11 test set-up: a real headless Chromium (Debian's) that trusts the lab CA."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from wirelab.lab.state import LabState
from wirelab.lab.tour import Chapter, StepResult, run_chapters
from wirelab.testing import services_required
from wirelab.web.browser import lab_browser, unavailable_reason
from wirelab.web.chapter import CHAPTER11

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser(wirelab_lab: LabState) -> Iterator[Browser]:
    """Headless Chromium trusting the session lab's CA; skipped (with why) where it cannot run.

    One per test module, not per session: while Playwright's sync API is open the main thread
    has a running event loop, so a second ``sync_playwright()`` (another module's browser) and
    every ``asyncio.run()`` there would fail in the modules that come after. Under
    ``WIRELAB_REQUIRE_SERVICES=1`` (``make test``, CI) a missing browser fails instead.
    """
    why = unavailable_reason()
    if why is not None:
        if services_required():
            pytest.fail(f"the browser tests must run here: {why}")
        pytest.skip(why)
    with lab_browser(ca_file=wirelab_lab.ca) as chromium:
        yield chromium


def run_tour_steps_of(module: ModuleType, lab: LabState) -> list[StepResult]:
    """Run the chapter 11 tour steps that ``module`` (``wirelab.web.tour_bank``...) adds."""
    steps = [s for s in CHAPTER11.steps if s.run.__module__ == module.__name__]
    return list(run_chapters([Chapter(11, CHAPTER11.title, steps=steps)], lab))
