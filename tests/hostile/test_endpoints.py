"""Every TCP and UDP endpoint of the lab against the generic hostile probes.

One test per (probe, service); inside it, every endpoint of the service that the probe
applies to is probed in turn, and the endpoint's normal client must be served within 2 s
while the abuse holds and after it. The lab's memory (its process and every process under
it) must not grow by more than :data:`PEAK_GROWTH` during a probe, nor stay above
:data:`AFTER_GROWTH` after it. A new chapter's service joins every test here by itself.
"""

from __future__ import annotations

import functools
import time

import pytest

from tests.hostile.conftest import (
    Verdicts,
    lab_processes,
    lab_rss,
    new_tracebacks,
    release_free_memory,
    served,
    service_endpoints,
)
from tests.hostile.probes import PROBES, TLS_PROBES, Probe
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState

MiB = 1 << 20

#: Most the lab's resident memory may grow while a probe holds (the issue's 1 GB bound).
PEAK_GROWTH = 1024 * MiB

#: Most it may stay grown once a probe has ended (after a short settling time).
AFTER_GROWTH = 96 * MiB

#: Seconds the lab's children (inetd's, one per connection) have to exit after a probe: a
#: child gives back a silent client after 10 s (docs/decisions/0071).
SETTLE = 15.0

#: Probes that apply to TCP endpoints only (UDP has no connections).
_TCP_ONLY = {"half_open", "reset", "slowloris"}


def probe_endpoint(state: LabState, ep: BoundEndpoint, name: str, probe: Probe) -> None:
    """Run ``probe`` against ``ep``, with the normal client during and after, memory, the
    processes it started, and tracebacks (each blamed on this endpoint)."""
    new_tracebacks(wait=0)  # anything earlier belongs to an earlier endpoint
    before = lab_rss(state)
    processes = lab_processes(state)
    peak = before

    def during(what: str) -> None:
        nonlocal peak
        served(state, ep, f"during {name} ({what})")
        peak = max(peak, lab_rss(state))

    try:
        probe(state, ep, during)
        served(state, ep, f"after {name}")
        peak = max(peak, lab_rss(state))
    finally:
        left = _settle(state, processes)
    assert peak - before <= PEAK_GROWTH, (
        f"{ep.name}: the lab grew by {(peak - before) / MiB:.0f} MiB during {name}"
    )
    assert not left, f"{ep.name}: {len(left)} lab processes outlived {name} by {SETTLE:g} s"
    found = new_tracebacks()
    assert not found, f"{ep.name}: a traceback reached the lab's log:\n" + "\n---\n".join(found)
    deadline = time.monotonic() + 3.0
    while (after := lab_rss(state)) - before > AFTER_GROWTH and time.monotonic() < deadline:
        release_free_memory()  # the lab runs in this process: freed is not leaked
        time.sleep(0.1)
    assert after - before <= AFTER_GROWTH, (
        f"{ep.name}: the lab stayed {(after - before) / MiB:.0f} MiB larger after {name}"
    )


def _settle(state: LabState, processes: set[int]) -> set[int]:
    """Wait (bounded) for the processes the probe started to exit; return those still alive."""
    deadline = time.monotonic() + SETTLE
    while (left := lab_processes(state) - processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _run(state: LabState, service: str, name: str, probe: Probe, applies: str) -> None:
    endpoints = service_endpoints(state, service)
    chosen = [ep for ep in endpoints if _applies(ep, applies)]
    if not chosen:
        pytest.skip(f"{name} does not apply to {service} (no {applies} endpoint)")
    verdicts = Verdicts(name)
    for ep in chosen:
        verdicts.run(ep, functools.partial(probe_endpoint, state, ep, name, probe))
    verdicts.judge()


def _applies(ep: BoundEndpoint, applies: str) -> bool:
    if applies == "tls":
        return ep.tls
    if applies == "tcp":
        return ep.protocol == "tcp"
    return True


@pytest.mark.parametrize("name", list(PROBES))
def test_probe(wirelab_lab: LabState, service: str, name: str) -> None:
    """Random bytes, a line with no end, 10,000 tiny messages, half-open and reset
    connections, and a slowloris: the endpoint keeps serving its normal client."""
    _run(wirelab_lab, service, name, PROBES[name], "tcp" if name in _TCP_ONLY else "any")


@pytest.mark.parametrize("name", list(TLS_PROBES))
def test_tls_probe(wirelab_lab: LabState, service: str, name: str) -> None:
    """Plaintext and TLS 1.0/1.1 hellos on every TLS endpoint: refused, and others served."""
    _run(wirelab_lab, service, name, TLS_PROBES[name], "tls")
