"""The lab's framing service (chapter 5): framing by end-of-file, and length-prefixed blocks."""

from __future__ import annotations

import asyncio

from wirelab.lab.service import LabContext, Service, Started

__all__ = ["SERVICES", "BlocksService"]


class BlocksService(Service):
    """Endpoint ``stream`` reads to end-of-file; ``blocks`` reads length-prefixed blocks."""

    name = "blocks"
    host = "example.com"
    chapter = 5
    description = "framing by end-of-file ('stream') and by length prefix ('blocks') (chapter 5)"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.data.blocks import open_blocks_server
        from wirelab.data.stream import open_stream_server

        stream = await open_stream_server(lab.bind_host, lab.port("blocks", "stream"))
        try:
            blocks = await open_blocks_server(lab.bind_host, lab.port("blocks", "blocks"))
        except BaseException:
            await stream.aclose()
            raise
        try:
            started(
                [
                    lab.endpoint(self, "stream", stream.socket),
                    lab.endpoint(self, "blocks", blocks.socket),
                ]
            )
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            await blocks.aclose()
            await stream.aclose()


SERVICES = (BlocksService(),)
