"""The lab's geocoding service (chapter 1): a Nominatim-compatible HTTPS geocoder, offline."""

from __future__ import annotations

import asyncio

from wirelab.lab.service import LabContext, Service, Started

__all__ = ["HOSTNAMES", "SERVICES", "GeoService"]

#: Names the geocoder's certificate covers: it plays both of the book's providers.
HOSTNAMES = ("nominatim.example.com", "maps.example.com")


class GeoService(Service):
    """Geocoding over HTTPS from an offline gazetteer (GeoNames cities and US ZIP codes)."""

    name = "geo"
    host = "nominatim.example.com"
    chapter = 1
    description = "HTTPS geocoder (chapter 1): Nominatim /search and Google-shaped JSON, offline"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.geo.gazetteer import shared
        from wirelab.geo.server import open_geo_server

        context = lab.server_ssl_context(list(HOSTNAMES))
        # The user's cache, shared by every lab (wirelab.geo.gazetteer.cache_dir), not the
        # lab's state directory: a fresh lab loads in well under a second, not builds.
        gazetteer = await asyncio.to_thread(shared)
        server = await open_geo_server(lab.bind_host, lab.port("geo", "https"), context, gazetteer)
        started([lab.endpoint(self, "https", server.socket, tls=True)])
        await server.serve_forever()


SERVICES = (GeoService(),)
