"""A private lab geocoder (lab CA, real TLS on loopback) for the geo tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wirelab.geo.gazetteer import Gazetteer, shared
from wirelab.geo.providers import Provider
from wirelab.geo.server import GeoServer, HTTPLimits
from wirelab.lab.service import LabContext
from wirelab.net.tlsctx import client_context


@dataclass
class RunningGeo:
    """A geocoder under test and how to reach it."""

    host: str
    port: int
    ca: Path
    lab: LabContext
    server: GeoServer

    def provider(self, style: str = "nominatim") -> Provider:
        return Provider(
            name="lab" if style == "nominatim" else "lab-google",
            style=style,
            host=self.host,
            port=self.port,
            tls_name="nominatim.example.com",
            ssl_context=client_context(cafile=self.ca),
            ca_file=str(self.ca),
            api_key="lab-key" if style == "google" else None,
        )


@pytest.fixture(scope="session")
def gazetteer() -> Gazetteer:
    """The gazetteer, from the user's shared cache (as the session lab's geocoder loads it)."""
    return shared()


def _start(lab: LabContext, gazetteer: Gazetteer, limits: HTTPLimits | None) -> RunningGeo:
    context = lab.server_ssl_context(["nominatim.example.com", "maps.example.com"])
    server = GeoServer("127.0.0.1", 0, context, gazetteer, limits).start()
    host, port = server.address
    return RunningGeo(host, port, lab.ca.cert_path, lab, server)


@pytest.fixture(scope="module")
def geo_server(
    tmp_path_factory: pytest.TempPathFactory, gazetteer: Gazetteer
) -> Iterator[RunningGeo]:
    """A geocoder with the default limits."""
    lab = LabContext(state_dir=tmp_path_factory.mktemp("geo-lab"), ephemeral=True)
    running = _start(lab, gazetteer, None)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def small_geo_server(
    tmp_path_factory: pytest.TempPathFactory, gazetteer: Gazetteer
) -> Iterator[RunningGeo]:
    """A geocoder with tight limits (2 connections, short timeouts) for limit tests."""
    lab = LabContext(state_dir=tmp_path_factory.mktemp("geo-small"), ephemeral=True)
    limits = HTTPLimits(
        max_connections=2, handshake_timeout=0.5, head_timeout=0.5, io_timeout=0.5, max_requests=3
    )
    running = _start(lab, gazetteer, limits)
    try:
        yield running
    finally:
        running.server.stop()
