"""The lab's framing service (chapter 5): framing by end-of-file, and length-prefixed blocks."""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "BlocksService"]


class BlocksService(DeclaredService):
    """Endpoint ``stream`` reads to end-of-file; ``blocks`` reads length-prefixed blocks."""

    name = "blocks"
    host = "example.com"
    chapter = 5
    description = "framing by end-of-file ('stream') and by length prefix ('blocks') (chapter 5)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        from wirelab.data.blocks import open_blocks_server
        from wirelab.data.stream import open_stream_server

        return (Endpoint("stream", open_stream_server), Endpoint("blocks", open_blocks_server))


SERVICES = (BlocksService(),)
