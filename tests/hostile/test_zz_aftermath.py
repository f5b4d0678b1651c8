"""After every probe (this module runs last): the lab is as big as before and serves everyone."""

from __future__ import annotations

from tests.hostile.conftest import lab_rss, served, service_endpoints
from wirelab.lab.state import LabState

MiB = 1 << 20

#: Most the lab may have grown over the whole suite.
SUITE_GROWTH = 128 * MiB


def test_lab_memory_after_the_suite(wirelab_lab: LabState, lab_baseline: int) -> None:
    """The lab's resident memory (its process and all under it) is bounded after the suite."""
    grown = lab_rss(wirelab_lab) - lab_baseline
    assert grown <= SUITE_GROWTH, f"the lab grew by {grown / MiB:.0f} MiB over the suite"


def test_every_endpoint_still_serves(wirelab_lab: LabState, service: str) -> None:
    """Every endpoint of every service still serves its normal client after the suite."""
    for ep in service_endpoints(wirelab_lab, service):
        served(wirelab_lab, ep, "after the whole hostile suite")
