"""Chapter 17 of the tour passes against the lab, every step."""

from __future__ import annotations

from wirelab.ftp.tour import CHAPTER
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import run_chapters


def test_chapter_17_passes(lab_ftp: ServiceView, wirelab_lab: LabState) -> None:
    results = list(run_chapters([CHAPTER], wirelab_lab))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert len(results) == len(CHAPTER.steps) == 4
    assert not failed, failed
