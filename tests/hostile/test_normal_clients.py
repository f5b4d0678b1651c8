"""Every lab service has a normal client in the suite, and it is served on a quiet lab."""

from __future__ import annotations

from tests.hostile.conftest import NORMAL_CLIENTS, served, service_endpoints
from wirelab.lab.state import LabState


def test_every_service_has_a_normal_client(wirelab_lab: LabState, service: str) -> None:
    """A new chapter's service must add its normal client, or no probe can judge it."""
    endpoints = service_endpoints(wirelab_lab, service)
    assert service in NORMAL_CLIENTS, (
        f"add a normal client for {service} (NORMAL_CLIENTS in tests/hostile/conftest.py)"
    )
    for ep in endpoints:
        served(wirelab_lab, ep, "on a quiet lab")
