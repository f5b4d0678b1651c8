"""Chapter 11's scraper and crawler steps in the tour, run against the session lab."""

from __future__ import annotations

from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import Chapter, run_chapters
from wirelab.web import tour_scrape
from wirelab.web.browser import unavailable_reason
from wirelab.web.chapter import CHAPTER11


def test_the_scrape_and_crawl_steps_pass(wirelab_lab: LabState, lab_tinysite: ServiceView) -> None:
    mine = Chapter(
        11,
        CHAPTER11.title,
        steps=[s for s in CHAPTER11.steps if s.run.__module__ == tour_scrape.__name__],
    )
    assert len(mine.steps) == 3
    results = list(run_chapters([mine], wirelab_lab))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert not failed, failed
    scrape, static, javascript = results
    assert any("paid $365, received $25" in line for line in scrape.transcript)
    assert any(line.startswith("9 static pages") for line in static.transcript)
    if unavailable_reason() is None:
        assert javascript.skipped is None
        assert javascript.transcript[0].startswith("9 static pages and 5 JavaScript-only pages")
    else:
        assert javascript.skipped == unavailable_reason()
