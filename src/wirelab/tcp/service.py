"""The lab's TCP service (chapter 3): the sixteen exchange and the upper-casing echo."""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "TCPService"]


class TCPService(DeclaredService):
    """Endpoint ``sixteen`` answers 16 bytes with 16; ``upper`` echoes everything upper-cased."""

    name = "tcp"
    host = "example.com"
    chapter = 3
    description = "TCP 16-byte exchange and the upper-casing echo of the deadlock demo (chapter 3)"

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        from wirelab.tcp.server import open_sixteen_server, open_upper_server

        return (Endpoint("sixteen", open_sixteen_server), Endpoint("upper", open_upper_server))


SERVICES = (TCPService(),)
