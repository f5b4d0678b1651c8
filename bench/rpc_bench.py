"""Benchmark for chapter 18: calls per second for a trivial method, each RPC kind, 1 and 10
clients, beside the stdlib's SimpleXMLRPCServer (the book's server, one client at a time).

Each server runs in its own process; each client is its own process (so the clients are not
serialized by one interpreter lock), making calls back to back for ``SECONDS`` on one
kept-alive connection (the stdlib server speaks HTTP/1.0: its clients reconnect per call).
The HTTP clients are a light load generator (a prepared request, the answer checked and read
by its length) so that the servers, not the clients, are measured; the RPyC clients are
rpyc's own, calling the service's ``get_service_name`` through a proxy held across calls
(one round trip each, as one HTTP request is).
Latencies are measured per call; p50 and p99 are over every call of a run.

Writes ``bench/results/rpc.json`` and ``bench/results/rpc.png``::

    .venv/bin/python bench/rpc_bench.py
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: Seconds each run makes calls for.
SECONDS = 2.0
CLIENTS = (1, 10)
KINDS = ("stdlib-xmlrpc", "xmlrpc", "jsonrpc", "rpyc")


def _serve(kind: str, ports: Any, stop: Any) -> None:
    """The server of ``kind`` in this (child) process, until ``stop`` is set."""
    if kind == "stdlib-xmlrpc":
        import threading
        from xmlrpc.server import SimpleXMLRPCServer

        from wirelab.rpc.functions import addtogether

        server = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
        server.register_function(addtogether)
        ports.put(server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stop.wait()
        server.shutdown()
        server.server_close()
    elif kind in ("xmlrpc", "jsonrpc"):
        from wirelab.net.server import ServerThread
        from wirelab.rpc.server import open_jsonrpc_server, open_xmlrpc_server

        opener = open_xmlrpc_server if kind == "xmlrpc" else open_jsonrpc_server
        with ServerThread(lambda: opener("127.0.0.1", 0)) as running:
            ports.put(running.address[1])
            stop.wait()
    else:
        from wirelab.rpc.rpyc_server import start_rpyc_server

        rpyc_server = start_rpyc_server("127.0.0.1", 0)
        ports.put(rpyc_server.address[1])
        stop.wait()
        rpyc_server.close()


class _RawHTTP:
    """A light load generator: one prepared POST, the answer read by its Content-Length.

    The clients must cost less than the servers, or a 2-core machine measures the clients.
    It reconnects when the server closes (the stdlib's server is HTTP/1.0: one call each).
    """

    def __init__(self, port: int, body: bytes, content_type: bytes, expect: bytes) -> None:
        self.port = port
        self.request = (
            b"POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            + content_type
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
        )
        self.expect = expect
        self.sock: socket.socket | None = None
        self.buffer = b""

    def call(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            self.buffer = head + b"\r\n\r\n" + rest
            self._more()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        body, self.buffer = rest[:length], rest[length:]
        if self.expect not in body:
            raise AssertionError(body[:200])
        if b"HTTP/1.0" in head[:9] or b"connection: close" in head.lower():
            self.close()

    def _more(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _caller(kind: str, port: int) -> tuple[Callable[[], Any], Callable[[], None]]:
    """One trivial call of ``kind``, and how to close the client."""
    if kind in ("stdlib-xmlrpc", "xmlrpc"):
        import xmlrpc.client

        body = xmlrpc.client.dumps((1, 2), "addtogether").encode()
        raw = _RawHTTP(port, body, b"text/xml", b"<int>3</int>")
        return raw.call, raw.close
    if kind == "jsonrpc":
        body = b'{"jsonrpc": "2.0", "method": "lengths", "params": ["a"], "id": 1}'
        raw = _RawHTTP(port, body, b"application/json-rpc", b'"result": [[1, "a"]]')
        return raw.call, raw.close
    import rpyc

    conn = rpyc.connect("127.0.0.1", port)
    method = conn.root.get_service_name  # the proxy of the bound method: one round trip a call
    return method, conn.close


def _client(kind: str, port: int, start: Any, out: Any) -> None:
    call, close = _caller(kind, port)
    call()  # connected and warm
    latencies: list[float] = []
    start.wait()
    end = time.perf_counter() + SECONDS
    errors = 0
    while (now := time.perf_counter()) < end:
        try:
            call()
        except Exception:
            errors += 1
            continue
        latencies.append(time.perf_counter() - now)
    close()
    out.put((latencies, errors))


def run(kind: str, clients: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ports: Any = ctx.Queue()
    stop = ctx.Event()
    start = ctx.Event()
    out: Any = ctx.Queue()
    server = ctx.Process(target=_serve, args=(kind, ports, stop))
    server.start()
    try:
        port = ports.get(timeout=30)
        workers = [
            ctx.Process(target=_client, args=(kind, port, start, out)) for _ in range(clients)
        ]
        for worker in workers:
            worker.start()
        time.sleep(1.0 + 0.1 * clients)  # every client connected and warm
        start.set()
        results = [out.get(timeout=SECONDS + 60) for _ in workers]
        for worker in workers:
            worker.join(10)
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.kill()
    latencies = sorted(t for lats, _ in results for t in lats)
    errors = sum(e for _, e in results)
    calls = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(calls - 1, int(p * calls))] * 1000 if calls else float("nan")

    row = {
        "kind": kind,
        "clients": clients,
        "seconds": SECONDS,
        "calls": calls,
        "errors": errors,
        "calls_per_second": round(calls / SECONDS, 1),
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
    }
    print(
        f"{kind:<14} {clients:>2} client(s): {row['calls_per_second']:>9,.0f} calls/s  "
        f"p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  errors {errors}"
    )
    return row


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.38
    for i, clients in enumerate(CLIENTS):
        xs = [k + (i - 0.5) * width for k in range(len(KINDS))]
        by_kind = {r["kind"]: r for r in rows if r["clients"] == clients}
        left.bar(
            xs, [by_kind[k]["calls_per_second"] for k in KINDS], width, label=f"{clients} client(s)"
        )
        right.bar(xs, [by_kind[k]["p99_ms"] for k in KINDS], width, label=f"{clients} client(s)")
    for axis, title in ((left, "calls per second"), (right, "p99 latency (ms)")):
        axis.set_xticks(range(len(KINDS)), KINDS)
        axis.set_title(title)
        axis.legend()
    right.axhline(10, color="grey", linestyle=":", linewidth=1)
    fig.suptitle("Chapter 18: a trivial call on each RPC kind (loopback)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    rows = [run(kind, clients) for clients in CLIENTS for kind in KINDS]
    by = {(r["kind"], r["clients"]): r for r in rows}
    speedup = by[("xmlrpc", 10)]["calls_per_second"] / max(
        1.0, by[("stdlib-xmlrpc", 10)]["calls_per_second"]
    )
    print(f"our XML-RPC at 10 clients: {speedup:.1f}x the stdlib's SimpleXMLRPCServer")
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "rpc",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
        },
        "rows": rows,
        "xmlrpc_speedup_at_10_clients": round(speedup, 2),
    }
    (RESULTS / "rpc.json").write_text(json.dumps(document, indent=2) + "\n")
    chart(rows, RESULTS / "rpc.png")


if __name__ == "__main__":
    main()
