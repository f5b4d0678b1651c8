"""Test-only peers that behave as the book's chapter 18 programs (written from their behaviour).

Run as ``python book_rpc.py PROGRAM [PORT]``. The servers bind 127.0.0.1 on PORT (0: any;
the book's are 7001, 7002 and 18861) and print ``Listening at ('127.0.0.1', PORT)`` first, the
one line the book's servers do not print (the harness reads the port from it). The clients
connect to 127.0.0.1:PORT and print what the book's clients print.

Their behaviour, bugs included:

* ``xmlrpc_server.py``: one connection at a time (SimpleXMLRPCServer), introspection and
  multicall; ``addtogether`` folds with ``+`` (no arguments: TypeError), ``quadratic``
  multiplies by ``a`` where it must divide and returns the roots through a set,
  ``remote_repr`` returns its argument;
* ``xmlrpc_client.py``: the eight calls, ending on a fault traceback (exit 1);
* ``xmlrpc_introspect.py``: the non-``system.`` methods, their signatures (or ``(...)``) and help;
* ``xmlrpc_multicall.py``: three calls in one request, each answer printed;
* ``jsonrpc_server.py``/``jsonrpc_client.py``: jsonrpclib-pelix, ``lengths``;
* ``rpyc_server.py``: rpyc's ThreadedServer, ``line_counter`` (UnboundLocalError for an empty
  file); ``rpyc_client.py``: ``allow_public_attrs`` on, a ``noisy`` callback, the file
  ``testfile.txt`` of the current directory.
"""

from __future__ import annotations

import functools
import math
import operator
import sys
from typing import Any


def _listening(port: int) -> None:
    print(f"Listening at ('127.0.0.1', {port})", flush=True)


def xmlrpc_server(port: int) -> None:
    from xmlrpc.server import SimpleXMLRPCServer

    def addtogether(*things: Any) -> Any:
        """Add together everything in the list `things`."""
        return functools.reduce(operator.add, things)

    def quadratic(a: float, b: float, c: float) -> list[float]:
        """Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0"""
        root = math.sqrt(b * b - 4.0 * a * c)
        return list({(-b - root) / 2.0 * a, (-b + root) / 2.0 * a})  # the book's precedence

    def remote_repr(arg: Any) -> Any:
        """Return the `repr()` rendering of the supplied `arg`."""
        return arg

    server = SimpleXMLRPCServer(("127.0.0.1", port), logRequests=False)
    server.register_introspection_functions()
    server.register_multicall_functions()
    for function in (addtogether, quadratic, remote_repr):
        server.register_function(function)
    _listening(server.server_address[1])
    print("Server ready", flush=True)
    server.serve_forever()


def xmlrpc_client(port: int) -> None:
    import xmlrpc.client

    proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}")
    print(proxy.addtogether("x", "ÿ", "z"))
    print(proxy.addtogether(20, 30, 4, 1))
    print(proxy.quadratic(2, -4, 0))
    print(proxy.quadratic(1, 2, 1))
    print(proxy.remote_repr((1, 2.0, "three")))
    print(proxy.remote_repr([1, 2.0, "three"]))
    print(proxy.remote_repr({"name": "Arthur", "data": {"age": 42, "sex": "M"}}))
    print(proxy.quadratic(1, 0, 1))


def xmlrpc_introspect(port: int) -> None:
    import xmlrpc.client

    proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}")
    print("Here are the functions supported by this server:")
    for name in proxy.system.listMethods():
        if name.startswith("system."):
            continue
        signatures = proxy.system.methodSignature(name)
        if isinstance(signatures, list) and signatures:
            for signature in signatures:
                print(f"{name}({signature})")
        else:
            print(f"{name}(...)")
        text = proxy.system.methodHelp(name)
        if text:
            print("  ", text)


def xmlrpc_multicall(port: int) -> None:
    import xmlrpc.client

    proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}")
    batch = xmlrpc.client.MultiCall(proxy)
    batch.addtogether("a", "b", "c")
    batch.quadratic(2, -4, 0)
    batch.remote_repr([1, 2.0, "three"])
    for answer in batch():
        print(answer)


def jsonrpc_server(port: int) -> None:
    from jsonrpclib.SimpleJSONRPCServer import SimpleJSONRPCServer

    def lengths(*args: Any) -> list[tuple[int | None, Any]]:
        results = []
        for arg in args:
            try:
                size: int | None = len(arg)
            except TypeError:
                size = None
            results.append((size, arg))
        return results

    server = SimpleJSONRPCServer(("127.0.0.1", port), logRequests=False)
    server.register_function(lengths)
    _listening(server.server_address[1])
    print("Starting server", flush=True)
    server.serve_forever()


def jsonrpc_client(port: int) -> None:
    from jsonrpclib import Server

    proxy = Server(f"http://127.0.0.1:{port}")
    print(proxy.lengths((1, 2, 3), 27, {"Sirius": -1.46, "Rigel": 0.12}))


def rpyc_server(port: int) -> None:
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class BookService(rpyc.Service):  # type: ignore[misc]
        def exposed_line_counter(self, fileobj: Any, function: Any) -> int:
            for linenum, line in enumerate(fileobj.readlines()):  # noqa: B007
                function(line)
            return linenum + 1  # UnboundLocalError for an empty file, as the book's

    server = ThreadedServer(BookService, hostname="127.0.0.1", port=port)
    server.listener.listen(128)  # before the harness connects (start() listens again)
    _listening(server.port)
    server.start()


def rpyc_client(port: int) -> None:
    import rpyc

    def noisy(string: str) -> None:
        print("Noisy:", repr(string))

    proxy = rpyc.connect("127.0.0.1", port, config={"allow_public_attrs": True})
    fileobj = open("testfile.txt")  # noqa: SIM115 - the book never closes it
    linecount = proxy.root.line_counter(fileobj, noisy)
    print("The number of lines in the file was", linecount)


PROGRAMS = {
    "xmlrpc_server.py": xmlrpc_server,
    "xmlrpc_client.py": xmlrpc_client,
    "xmlrpc_introspect.py": xmlrpc_introspect,
    "xmlrpc_multicall.py": xmlrpc_multicall,
    "jsonrpc_server.py": jsonrpc_server,
    "jsonrpc_client.py": jsonrpc_client,
    "rpyc_server.py": rpyc_server,
    "rpyc_client.py": rpyc_client,
}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](int(sys.argv[2]) if len(sys.argv) > 2 else 0)
