"""The lab's UDP service (chapter 2): a reliable endpoint and a lossy one."""

from __future__ import annotations

import asyncio

from wirelab.lab.service import LabContext, Service, Started
from wirelab.udp.server import open_udp_server

__all__ = ["SERVICES", "UDPService"]


class UDPService(Service):
    """The lab's UDP server: a reliable endpoint and a lossy one (drops half the requests)."""

    name = "udp"
    host = "example.com"
    chapter = 2
    description = "UDP request/reply (chapter 2); 'lossy' drops 50% of requests"

    async def serve(self, lab: LabContext, started: Started) -> None:
        plain, _ = await open_udp_server(lab.bind_host, lab.port("udp", "udp"))
        try:
            lossy, _ = await open_udp_server(lab.bind_host, lab.port("udp", "lossy"), drop=0.5)
        except BaseException:
            plain.close()
            raise
        try:
            started(
                [
                    lab.endpoint(self, "udp", plain.get_extra_info("socket")),
                    lab.endpoint(self, "lossy", lossy.get_extra_info("socket")),
                ]
            )
            await asyncio.Event().wait()
        finally:
            plain.close()
            lossy.close()


SERVICES = (UDPService(),)
