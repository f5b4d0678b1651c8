"""The chapter 18 servers: XML-RPC and JSON-RPC over HTTP/1.1, and the RPyC line counter.

:func:`open_xmlrpc_server` serves the book's three functions, corrected
(:mod:`wirelab.rpc.functions`), with introspection and multicall, at ``/`` and ``/RPC2``;
:func:`open_jsonrpc_server` serves the book's ``lengths``. Both run on
:mod:`wirelab.rpc.http`. :func:`open_rpyc_server` is in :mod:`wirelab.rpc.rpyc_server`.
"""

from __future__ import annotations

import socket

from wirelab.errors import ConfigError
from wirelab.net.server import ConnectionServer
from wirelab.rpc.functions import FUNCTIONS, lengths
from wirelab.rpc.http import Dispatch, RPCHTTPLimits, open_rpc_http_server, serve_rpc_http_on
from wirelab.rpc.jsoncodec import JSONRPCDispatcher
from wirelab.rpc.xmlcodec import XMLRPCDispatcher

__all__ = [
    "json_dispatcher",
    "open_jsonrpc_server",
    "open_xmlrpc_server",
    "serve_on_socket",
    "xml_dispatcher",
]


def xml_dispatcher() -> XMLRPCDispatcher:
    """The book's XML-RPC server's functions (corrected), introspection and multicall."""
    dispatcher = XMLRPCDispatcher()
    for name, function in FUNCTIONS.items():
        dispatcher.register(name, function)
    return dispatcher


def json_dispatcher() -> JSONRPCDispatcher:
    """The book's JSON-RPC server's one function, ``lengths``."""
    dispatcher = JSONRPCDispatcher()
    dispatcher.register("lengths", lengths)
    return dispatcher


async def open_xmlrpc_server(
    host: str | None, port: int | str, *, limits: RPCHTTPLimits | None = None
) -> ConnectionServer:
    """Serve XML-RPC at ``host``:``port`` (paths ``/`` and ``/RPC2``).

    Raises:
        ConnectError: the address cannot be bound.
    """
    return await open_rpc_http_server(
        xml_dispatcher().dispatch_bytes,
        host,
        port,
        name="xml-rpc",
        content_type=b"text/xml",
        limits=limits,
    )


async def open_jsonrpc_server(
    host: str | None, port: int | str, *, limits: RPCHTTPLimits | None = None
) -> ConnectionServer:
    """Serve JSON-RPC 2.0 at ``host``:``port`` (paths ``/`` and ``/RPC2``).

    Raises:
        ConnectError: the address cannot be bound.
    """
    return await open_rpc_http_server(
        json_dispatcher().dispatch_bytes,
        host,
        port,
        name="json-rpc",
        content_type=b"application/json-rpc",
        limits=limits,
    )


async def serve_on_socket(
    kind: str, sock: socket.socket, *, limits: RPCHTTPLimits | None = None
) -> ConnectionServer:
    """Serve ``kind`` (``"xmlrpc"`` or ``"jsonrpc"``) on a listening socket it now owns.

    Raises:
        ConfigError: another kind (RPyC is served from one process only).
    """
    dispatch: Dispatch
    if kind == "xmlrpc":
        dispatch, name, content_type = xml_dispatcher().dispatch_bytes, "xml-rpc", b"text/xml"
    elif kind == "jsonrpc":
        dispatch = json_dispatcher().dispatch_bytes
        name, content_type = "json-rpc", b"application/json-rpc"
    else:
        raise ConfigError(f"no worker processes for {kind!r}: only xmlrpc and jsonrpc")
    return await serve_rpc_http_on(
        dispatch, sock, name=name, content_type=content_type, limits=limits
    )
