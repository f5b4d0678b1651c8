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

**Is the comparison fair?** The stdlib's server is the book's: HTTP/1.0, one connection at a
time, so each of its calls costs a TCP connect, accept and close on top of the call (its
clients have no choice: it closes after every answer). That is what a reader of the book
runs, so it is the baseline; ours keeps connections alive, as any HTTP/1.1 client expects.
Our XML-RPC and JSON-RPC servers are ``wirelab rpc serve --kind xmlrpc|jsonrpc`` as a user
runs it: a child process with its default worker processes (one per CPU, at most 8, each on
uvloop; ``WIRELAB_RPC_BENCH_WORKERS=N`` sets ``--workers N``); the count is printed and
recorded as ``server_processes``, and their CPU time is the parent's and every worker's. The
stdlib's server and RPyC are one process each (RPyC's service keeps state per connection).
On a shared machine the load moves from second to second, so the
kinds are measured in ``ROUNDS`` interleaved rounds (every kind once per round, the 10-client
runs of a round back to back, the order rotated from round to round) and each figure is the
median over the rounds, with the range; the speed-up is computed within each round, side by
side, then its median taken. The server's CPU time per call is reported too: it moves far
less with the load than calls per second do.

Writes ``bench/results/rpc.json`` and ``bench/results/rpc.png``::

    .venv/bin/python bench/rpc_bench.py                      # 3 rounds, about 2 minutes
    WIRELAB_RPC_BENCH_ROUNDS=1 .venv/bin/python bench/rpc_bench.py
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: Seconds each run makes calls for.
SECONDS = 1.5
#: Interleaved rounds: each kind is measured once per round; figures are medians.
ROUNDS = int(os.environ.get("WIRELAB_RPC_BENCH_ROUNDS", "3"))
CLIENTS = (1, 10)
KINDS = ("stdlib-xmlrpc", "xmlrpc", "jsonrpc", "rpyc")
#: The kinds measured as ``wirelab rpc serve`` runs them (worker processes, uvloop).
SERVE_KINDS = ("xmlrpc", "jsonrpc")
#: ``--workers`` for them; empty: the command's default (one per CPU, at most 8).
SERVE_WORKERS = os.environ.get("WIRELAB_RPC_BENCH_WORKERS", "")


def _serve(kind: str, ports: Any, stop: Any) -> None:
    """The server of ``kind`` (the stdlib's or RPyC) in this (child) process, until ``stop``."""
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
    else:
        from wirelab.rpc.rpyc_server import start_rpyc_server

        rpyc_server = start_rpyc_server("127.0.0.1", 0)
        ports.put(rpyc_server.address[1])
        stop.wait()
        rpyc_server.close()


class _Server:
    """The server of one run: its port, its processes (for their CPU time), how to stop it."""

    def __init__(self, kind: str, ctx: Any) -> None:
        self.kind = kind
        self.workers = 1
        self._process: Any = None
        self._command: subprocess.Popen[str] | None = None
        if kind in SERVE_KINDS:
            self._start_command(kind)
        else:
            self._ports: Any = ctx.Queue()
            self._stop: Any = ctx.Event()
            self._process = ctx.Process(target=_serve, args=(kind, self._ports, self._stop))
            self._process.start()
            self.port = int(self._ports.get(timeout=30))
            self.pids = [self._process.pid]

    def _start_command(self, kind: str) -> None:
        """``wirelab rpc serve --kind KIND`` as a user runs it: its default workers, uvloop."""
        command = [sys.executable, "-m", "wirelab", "rpc", "serve", "--kind", kind, "-p", "0"]
        if SERVE_WORKERS:
            command += ["--workers", SERVE_WORKERS]
        self._command = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert self._command.stderr is not None
        line = self._command.stderr.readline()
        match = re.search(r"listening at [^ ]+:(\d+) ", line)
        if match is None:
            self.close()
            raise RuntimeError(f"rpc serve did not start: {line!r}")
        self.port = int(match.group(1))
        pids = re.search(r"(\d+) worker processes, pids ([\d ]+)\)", line)
        self.workers = int(pids.group(1)) if pids else 1
        self.pids = [self._command.pid] + ([int(p) for p in pids.group(2).split()] if pids else [])
        # Drain its log (a warning per refused request would fill the pipe and stall it).
        threading.Thread(target=self._command.stderr.read, daemon=True).start()

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)

    def close(self) -> None:
        if self._command is not None:
            self._command.send_signal(signal.SIGTERM)
            try:
                self._command.wait(20)
            except subprocess.TimeoutExpired:
                self._command.kill()
                self._command.wait(10)
        if self._process is not None:
            self._stop.set()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()


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


def _client(kind: str, port: int, ready: Any, start: Any, out: Any) -> None:
    call, close = _caller(kind, port)
    for _ in range(20):
        call()  # connected and warm
    ready.put(os.getpid())
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


def _cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system) a process has used so far: the server's cost of the calls,
    which moves much less with the machine's load than calls per second do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(kind: str, clients: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    ready: Any = ctx.Queue()
    out: Any = ctx.Queue()
    server = _Server(kind, ctx)
    try:
        port = server.port
        workers = [
            ctx.Process(target=_client, args=(kind, port, ready, start, out))
            for _ in range(clients)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:  # every client connected and warm
            ready.get(timeout=60)
        time.sleep(0.2)  # and the warm-up calls' answers all read
        cpu_before = server.cpu_seconds()
        start.set()
        results = [out.get(timeout=SECONDS + 60) for _ in workers]
        cpu = server.cpu_seconds() - cpu_before
        for worker in workers:
            worker.join(10)
    finally:
        server.close()
    latencies = sorted(t for lats, _ in results for t in lats)
    errors = sum(e for _, e in results)
    calls = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(calls - 1, int(p * calls))] * 1000 if calls else float("nan")

    row = {
        "kind": kind,
        "clients": clients,
        "server_processes": server.workers,
        "seconds": SECONDS,
        "calls": calls,
        "errors": errors,
        "calls_per_second": round(calls / SECONDS, 1),
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
        "server_cpu_us_per_call": round(cpu / calls * 1e6, 1) if calls else None,
    }
    print(
        f"{kind:<14} {clients:>2} client(s), {server.workers} server process(es): "
        f"{row['calls_per_second']:>9,.0f} calls/s  "
        f"p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  errors {errors}  "
        f"server CPU {row['server_cpu_us_per_call']} us/call"
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
    fig.suptitle(
        f"Chapter 18: a trivial call on each RPC kind (loopback, median of {ROUNDS} rounds)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (kind, clients): the median of each figure over the rounds, and the range."""
    rows = []
    for clients in CLIENTS:
        for kind in KINDS:
            mine = [r for r in runs if r["kind"] == kind and r["clients"] == clients]
            rates = [r["calls_per_second"] for r in mine]
            p99s = [r["p99_ms"] for r in mine]
            rows.append(
                {
                    "kind": kind,
                    "clients": clients,
                    "server_processes": mine[0]["server_processes"],
                    "rounds": len(mine),
                    "calls_per_second": round(statistics.median(rates), 1),
                    "calls_per_second_range": [min(rates), max(rates)],
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in mine), 3),
                    "p99_ms": round(statistics.median(p99s), 3),
                    "p99_ms_range": [min(p99s), max(p99s)],
                    "errors": sum(r["errors"] for r in mine),
                    "server_cpu_us_per_call": statistics.median(
                        r["server_cpu_us_per_call"] for r in mine
                    ),
                }
            )
    return rows


def main() -> None:
    runs: list[dict[str, Any]] = []
    speedups: list[float] = []
    loads: list[float] = []
    for number in range(ROUNDS):
        loads.append(round(os.getloadavg()[0], 2))
        print(f"round {number + 1} of {ROUNDS} (load {loads[-1]:.1f})")
        order = KINDS[number % len(KINDS) :] + KINDS[: number % len(KINDS)]  # none always first
        mine = [run(kind, clients) for clients in CLIENTS for kind in order]
        by = {(r["kind"], r["clients"]): r for r in mine}
        speedups.append(
            by[("xmlrpc", 10)]["calls_per_second"]
            / max(1.0, by[("stdlib-xmlrpc", 10)]["calls_per_second"])
        )
        runs.extend(mine)
    rows = summarize(runs)
    speedup = statistics.median(speedups)
    print("medians over the rounds:")
    for row in rows:
        low, high = row["calls_per_second_range"]
        print(
            f"{row['kind']:<14} {row['clients']:>2} client(s), {row['server_processes']} proc: "
            f"{row['calls_per_second']:>9,.0f}"
            f" calls/s ({low:,.0f}-{high:,.0f})  p99 {row['p99_ms']:6.2f} ms"
            f" ({row['p99_ms_range'][0]:.2f}-{row['p99_ms_range'][1]:.2f})"
            f"  server CPU {row['server_cpu_us_per_call']} us/call"
        )
    print(
        f"our XML-RPC at 10 clients: {speedup:.1f}x the stdlib's SimpleXMLRPCServer "
        f"(rounds: {', '.join(f'{x:.1f}' for x in speedups)})"
    )
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "rpc",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
        },
        "seconds_per_run": SECONDS,
        "rounds": ROUNDS,
        "load_1min_per_round": loads,
        "server_processes": {
            kind: next(r["server_processes"] for r in rows if r["kind"] == kind) for kind in KINDS
        },
        "rows": rows,
        "runs": runs,
        "xmlrpc_speedup_at_10_clients": round(speedup, 2),
        "xmlrpc_speedup_per_round": [round(x, 2) for x in speedups],
    }
    (RESULTS / "rpc.json").write_text(json.dumps(document, indent=2) + "\n")
    chart(rows, RESULTS / "rpc.png")


if __name__ == "__main__":
    main()
