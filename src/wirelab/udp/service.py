"""The lab's UDP service (chapter 2): a reliable endpoint and a lossy one."""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "UDPService"]


class UDPService(DeclaredService):
    """The lab's UDP server: a reliable endpoint and a lossy one (drops half the requests)."""

    name = "udp"
    host = "example.com"
    chapter = 2
    description = "UDP request/reply (chapter 2); 'lossy' drops 50% of requests"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        from wirelab.udp.server import open_udp_server

        async def lossy(host: str, port: int) -> object:
            return await open_udp_server(host, port, drop=0.5)

        return (Endpoint("udp", open_udp_server), Endpoint("lossy", lossy))


SERVICES = (UDPService(),)
