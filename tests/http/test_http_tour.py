"""Chapters 9 and 10 of the tour pass against the session lab."""

from __future__ import annotations

from wirelab.http.tour import CHAPTERS
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import run_chapters


def test_chapters_9_and_10_pass(wirelab_lab: LabState, lab_www: ServiceView) -> None:
    results = list(run_chapters(CHAPTERS, wirelab_lab))
    assert [c.number for c in CHAPTERS] == [9, 10]
    assert len(results) == 10
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert not failed, failed
