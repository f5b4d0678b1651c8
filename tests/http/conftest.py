"""Fixtures of the HTTP tests: the lab's web host, reached by its playground name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wirelab.lab.state import LabState, ServiceView


@dataclass(frozen=True)
class Www:
    """The lab's web host: base URLs by its playground name, and the lab CA file."""

    http: str
    https: str
    http_port: int
    https_port: int
    cafile: Path
    state: LabState


@pytest.fixture
def www(
    wirelab_lab: LabState, lab_www: ServiceView, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Www]:
    """``http://www.example.com:PORT`` and ``https://...`` of the session lab (names resolve)."""
    monkeypatch.setenv("WIRELAB_HOME", wirelab_lab.directory)
    http, https = lab_www.endpoint("http"), lab_www.endpoint("https")
    yield Www(
        http=f"http://www.example.com:{http.port}",
        https=f"https://www.example.com:{https.port}",
        http_port=http.port,
        https_port=https.port,
        cafile=Path(wirelab_lab.directory) / "ca" / "ca.pem",
        state=wirelab_lab,
    )
