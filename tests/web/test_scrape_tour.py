"""Chapter 11's scraper and crawler steps in the tour, run against the session lab."""

from __future__ import annotations

from tests.web.conftest import run_tour_steps_of
from wirelab.lab.state import LabState, ServiceView
from wirelab.web import tour_scrape
from wirelab.web.browser import unavailable_reason


def test_the_scrape_and_crawl_steps_pass(wirelab_lab: LabState, lab_tinysite: ServiceView) -> None:
    results = run_tour_steps_of(tour_scrape, wirelab_lab)
    assert len(results) == 3
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
