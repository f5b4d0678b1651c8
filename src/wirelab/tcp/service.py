"""The lab's TCP service (chapter 3): the sixteen exchange and the upper-casing echo."""

from __future__ import annotations

import asyncio

from wirelab.lab.service import LabContext, Service, Started

__all__ = ["SERVICES", "TCPService"]


class TCPService(Service):
    """Endpoint ``sixteen`` answers 16 bytes with 16; ``upper`` echoes everything upper-cased."""

    name = "tcp"
    host = "example.com"
    chapter = 3
    description = "TCP 16-byte exchange and the upper-casing echo of the deadlock demo (chapter 3)"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.tcp.server import open_sixteen_server, open_upper_server

        sixteen = await open_sixteen_server(lab.bind_host, lab.port("tcp", "sixteen"))
        try:
            upper = await open_upper_server(lab.bind_host, lab.port("tcp", "upper"))
        except BaseException:
            await sixteen.aclose()
            raise
        try:
            started(
                [
                    lab.endpoint(self, "sixteen", sixteen.socket),
                    lab.endpoint(self, "upper", upper.socket),
                ]
            )
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await upper.aclose()
            await sixteen.aclose()


SERVICES = (TCPService(),)
