"""The lab's RPC service (chapter 18): XML-RPC, JSON-RPC and RPyC on the book's ports."""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import DeclaredService, Endpoint, LabContext

__all__ = ["SERVICES", "RPCService"]


class RPCService(DeclaredService):
    """Endpoints ``xmlrpc`` (7001), ``jsonrpc`` (7002) and ``rpyc`` (18861)."""

    name = "rpc"
    host = "example.com"
    chapter = 18
    description = (
        "XML-RPC ('xmlrpc'), JSON-RPC 2.0 ('jsonrpc') and the RPyC line counter ('rpyc') "
        "(chapter 18)"
    )

    def endpoints(self, lab: LabContext) -> Sequence[Endpoint]:
        from wirelab.rpc.rpyc_server import open_rpyc_server
        from wirelab.rpc.server import open_jsonrpc_server, open_xmlrpc_server

        return (
            Endpoint("xmlrpc", open_xmlrpc_server),
            Endpoint("jsonrpc", open_jsonrpc_server),
            Endpoint("rpyc", open_rpyc_server),
        )


SERVICES = (RPCService(),)
