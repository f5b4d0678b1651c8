"""docs/lab.md lists every default port of wirelab.config, so the two cannot drift."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from wirelab.config import DEFAULT_PORTS
from wirelab.lab.registry import services

DOC = Path(__file__).resolve().parents[2] / "docs" / "lab.md"


def _doc_rows() -> dict[tuple[str, str], int]:
    rows = re.findall(r"^\| (\w[\w-]*) \| (\w[\w-]*) \| (\d+) \|", DOC.read_text(), re.M)
    return {(service, endpoint): int(port) for service, endpoint, port in rows}


def test_every_default_port_is_documented() -> None:
    assert _doc_rows() == DEFAULT_PORTS


def test_no_two_endpoints_share_a_port_and_protocol() -> None:
    protocols = {key: ("udp" if key[1] in ("udp", "lossy") else "tcp") for key in DEFAULT_PORTS}
    clashes = Counter((port, protocols[key]) for key, port in DEFAULT_PORTS.items())
    shared = {k: v for k, v in clashes.items() if v > 1}
    assert not shared, shared


def test_every_service_has_its_ports_in_the_table() -> None:
    named = {service for service, _ in DEFAULT_PORTS}
    for svc in services():
        assert svc.name in named, f"lab service {svc.name!r} has no default port"
