"""Chapter 18 in the tour: XML-RPC, JSON-RPC and RPyC against the lab, with their faults."""

from __future__ import annotations

import tempfile
from pathlib import Path

from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    18,
    "RPC",
    "Calls that look local: the types each RPC carries, its faults, and what it exposes.",
)


def _url(ctx: TourContext, endpoint: str) -> str:
    host, port = ctx.lab.endpoint("rpc", endpoint).sockaddr
    return f"http://{host}:{port}/"


@CHAPTER.step("XML-RPC: the book's calls, a tuple comes back a list, a fault is an error")
def _xmlrpc(ctx: TourContext) -> None:
    from wirelab.rpc.client import RPCFault, XMLRPCClient

    with XMLRPCClient(_url(ctx, "xmlrpc")) as client:
        joined = client.call("addtogether", "x", "ÿ", "z")
        roots = client.call("quadratic", 2, -4, 0)
        echoed = client.call("remote_repr", (1, 2.0, "three"))
        nothing = client.call("addtogether")
        ctx.say(f"addtogether('x', 'ÿ', 'z') = {joined!r}; addtogether() = {nothing!r}")
        ctx.say(f"quadratic(2, -4, 0) = {roots} (the book's server says [0.0, 8.0])")
        ctx.say(f"remote_repr((1, 2.0, 'three')) = {echoed} : the server received a list")
        try:
            client.call("quadratic", 1, 0, 1)
            fault = None
        except RPCFault as exc:
            fault = exc
            ctx.say(f"quadratic(1, 0, 1) -> fault {exc.code}: {exc.message}")
    ctx.check(joined == "xÿz" and nothing == 0, f"addtogether gave {joined!r}, {nothing!r}")
    ctx.check(roots == [0.0, 2.0], f"quadratic gave {roots}")
    ctx.check(echoed == "[1, 2.0, 'three']", f"remote_repr gave {echoed!r}")
    ctx.check(fault is not None and fault.code == -32602, "quadratic(1, 0, 1) gave no fault")


@CHAPTER.step("XML-RPC introspection and a multicall (three calls, one HTTP request)")
def _introspect(ctx: TourContext) -> None:
    from wirelab.rpc.client import XMLRPCClient

    with XMLRPCClient(_url(ctx, "xmlrpc")) as client:
        names = [info.name for info in client.introspect()]
        results = client.multicall(
            [
                ("addtogether", ("a", "b", "c")),
                ("quadratic", (2, -4, 0)),
                ("remote_repr", ([1, 2.0, "three"],)),
            ]
        )
    ctx.say(f"methods: {', '.join(names)}")
    ctx.say(f"multicall answers: {results}")
    ctx.check(names == ["addtogether", "quadratic", "remote_repr"], f"methods {names}")
    ctx.check(results == ["abc", [0.0, 2.0], "[1, 2.0, 'three']"], f"multicall {results}")


@CHAPTER.step("JSON-RPC 2.0: the book's lengths, a batch, a typed error")
def _jsonrpc(ctx: TourContext) -> None:
    from wirelab.rpc.client import JSONRPCClient
    from wirelab.rpc.jsoncodec import Call, JSONRPCError

    with JSONRPCClient(_url(ctx, "jsonrpc")) as client:
        answer = client.call("lengths", (1, 2, 3), 27, {"Sirius": -1.46, "Rigel": 0.12})
        batch = client.batch(
            [Call("lengths", ["ab"]), Call("lengths", [1], notify=True), Call("nope")]
        )
    ctx.say(f"lengths((1, 2, 3), 27, {{...}}) = {answer}")
    error = batch[2]
    ctx.say(f"a batch of three (one a notification): {batch[0]}, {batch[1]}, {error}")
    ctx.check(answer[0] == [3, [1, 2, 3]] and answer[1] == [None, 27], f"lengths gave {answer}")
    ctx.check(isinstance(error, JSONRPCError) and error.code == -32601, f"batch gave {batch}")


@CHAPTER.step("RPyC: the server reads our file through a proxy and calls us back per line")
def _rpyc(ctx: TourContext) -> None:
    from wirelab.rpc.client import count_lines

    host, port = ctx.lab.endpoint("rpc", "rpyc").sockaddr
    heard: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "testfile.txt"
        path.write_text("Simple\nis\nbetter\nthan\ncomplex.\n", encoding="utf-8")
        count = count_lines(host, port, path, heard.append)
        empty = Path(tmp) / "empty.txt"
        empty.write_text("", encoding="utf-8")
        none = count_lines(host, port, empty, heard.append)
    ctx.say(f"callbacks ran here: {heard}")
    ctx.say(f"the number of lines in the file was {count}; an empty file has {none}")
    ctx.check(count == 5 and len(heard) == 5 and none == 0, f"counted {count}, {none}")


CHAPTERS = (CHAPTER,)
