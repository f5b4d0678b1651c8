"""Every lab service has a normal client in the suite, and it is served on a quiet lab."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.hostile.conftest import (
    NORMAL_CLIENTS,
    NoNormalClient,
    Verdicts,
    new_tracebacks,
    served,
    service_endpoints,
)
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState


def test_every_service_has_a_normal_client(wirelab_lab: LabState, service: str) -> None:
    """A new chapter's service must add its normal client, or no probe can judge it."""
    endpoints = service_endpoints(wirelab_lab, service)
    assert service in NORMAL_CLIENTS, (
        f"add a normal client for {service} (NORMAL_CLIENTS in tests/hostile/conftest.py)"
    )
    for ep in endpoints:
        served(wirelab_lab, ep, "on a quiet lab")


def test_a_service_without_a_normal_client_is_named(wirelab_lab: LabState) -> None:
    """A service the registry does not know fails with what to add, not a KeyError."""
    stranger = BoundEndpoint("gopher", "gopher", "example.com", "127.0.0.1", 70, "tcp")
    with pytest.raises(NoNormalClient, match="add a normal client for gopher"):
        served(wirelab_lab, stranger, "on a quiet lab")
    new_endpoint = BoundEndpoint("tcp", "daytime", "example.com", "127.0.0.1", 13, "tcp")
    with pytest.raises(NoNormalClient, match=r"add a normal client for tcp\.daytime"):
        served(wirelab_lab, new_endpoint, "on a quiet lab")


def test_known_findings_are_strict_per_endpoint(
    wirelab_lab: LabState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listed finding alone xfails; an unlisted one fails; a listed one that passes fails."""
    monkeypatch.setattr(
        "tests.hostile.conftest.KNOWN_FINDINGS", {("probe", "svc.known"): "why it fails"}
    )
    only_known = Verdicts("probe", failures={"svc.known": "broke"}, passed=["svc.other"])
    with pytest.raises(pytest.xfail.Exception, match="why it fails"):
        only_known.judge()
    sibling = Verdicts("probe", failures={"svc.known": "broke", "svc.other": "broke too"})
    with pytest.raises(pytest.fail.Exception, match=r"svc\.other: broke too"):
        sibling.judge()
    fixed = Verdicts("probe", passed=["svc.known", "svc.other"])
    with pytest.raises(pytest.fail.Exception, match=r"now pass at svc\.known"):
        fixed.judge()
    Verdicts("other-probe", passed=["svc.known"]).judge()  # nothing listed for it: passes


def test_a_traceback_in_the_lab_log_is_seen_once(wirelab_lab: LabState) -> None:
    """The traceback watch sees a logged exception and a log file's traceback, each once."""
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("wirelab.hostile-selftest").exception("a handler failed")
    log_file = Path(wirelab_lab.directory) / "hostile-selftest.log"
    try:
        log_file.write_text("Traceback (most recent call last):\n  ...\nValueError: x\n")
        found = new_tracebacks()
    finally:
        log_file.unlink()
    assert any("RuntimeError: boom" in line for line in found), found
    assert any(line.startswith("hostile-selftest.log: Traceback") for line in found), found
    assert new_tracebacks() == []
