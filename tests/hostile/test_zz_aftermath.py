"""After every probe (this module runs last): the lab is as big as before and serves everyone."""

from __future__ import annotations

from tests.hostile.conftest import (
    lab_rss_by_process,
    release_free_memory,
    served,
    service_endpoints,
)
from wirelab.lab.state import LabState

MiB = 1 << 20

#: Most the lab may have grown over the whole suite.
SUITE_GROWTH = 128 * MiB


def test_lab_memory_after_the_suite(
    wirelab_lab: LabState, lab_baseline: dict[int, tuple[str, int]]
) -> None:
    """The lab's resident memory (its process and all under it) is bounded after the suite."""
    release_free_memory()
    now = lab_rss_by_process(wirelab_lab)
    grown = sum(rss for _, rss in now.values()) - sum(rss for _, rss in lab_baseline.values())
    changes = sorted(
        (
            (rss - lab_baseline.get(pid, ("", 0))[1], f"{name}[{pid}]")
            for pid, (name, rss) in now.items()
        ),
        reverse=True,
    )
    top = ", ".join(f"{who} {change / MiB:+.0f} MiB" for change, who in changes[:5])
    assert grown <= SUITE_GROWTH, f"the lab grew by {grown / MiB:.0f} MiB over the suite: {top}"


def test_every_endpoint_still_serves(wirelab_lab: LabState, service: str) -> None:
    """Every endpoint of every service still serves its normal client after the suite."""
    for ep in service_endpoints(wirelab_lab, service):
        served(wirelab_lab, ep, "after the whole hostile suite")
