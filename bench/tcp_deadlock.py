"""Benchmark for chapter 3: where the naive client deadlocks, and how fast the fix moves data.

Two measurements, side by side in one run, against our upper-casing echo server on loopback:

1. the stall point: bytes the naive client got out before nothing moved any more, for several
   ``SO_RCVBUF``/``SO_SNDBUF`` settings of the server (``default`` = the kernel's autotuning);
2. throughput of the ``concurrent`` client for growing sizes, next to the ``halfclose`` client
   for the sizes that still fit in the buffers.

Writes ``bench/results/tcp_deadlock.json`` and ``bench/results/tcp_deadlock.png``::

    .venv/bin/python bench/tcp_deadlock.py
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from wirelab.net.server import ServerThread
from wirelab.tcp.deadlock import Stalled, deadlock
from wirelab.tcp.server import UpperSettings, open_upper_server

RESULTS = Path(__file__).resolve().parent / "results"
BUFFERS: tuple[int | None, ...] = (None, 1 << 20, 256 << 10, 64 << 10)
SIZES = (1 << 20, 4 << 20, 16 << 20, 64 << 20)
STALL = 0.5


def _upper(buffer_size: int | None) -> ServerThread:
    settings = UpperSettings(buffer_size=buffer_size, idle_timeout=5.0)
    return ServerThread(lambda: open_upper_server("127.0.0.1", 0, settings))


def stall_points() -> list[dict[str, object]]:
    rows = []
    for size in BUFFERS:
        with _upper(size) as server:
            try:
                deadlock(*server.address, 256 << 20, "naive", stall=STALL)
                sent = None
            except Stalled as exc:
                sent = exc.sent
        rows.append({"server_buffer": size or "default", "stalled_after_bytes": sent})
        print(f"server buffers {size or 'default'}: naive stalled after {sent} bytes")
    return rows


def throughput() -> list[dict[str, object]]:
    rows = []
    with _upper(None) as server:
        for size in SIZES:
            for mode in ("concurrent", "halfclose"):
                began = time.perf_counter()
                try:
                    report = deadlock(*server.address, size, mode, stall=STALL)  # type: ignore[arg-type]
                    seconds = report.seconds
                    ok = True
                except Stalled:
                    seconds = time.perf_counter() - began
                    ok = False
                mbps = size / seconds / 1e6 if ok else None
                rows.append({"mode": mode, "bytes": size, "ok": ok, "MB_per_s": mbps})
                print(
                    f"{mode:>10} {size >> 20:>4} MiB: " + (f"{mbps:.0f} MB/s" if ok else "stalled")
                )
    return rows


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stalls = stall_points()
    speeds = throughput()
    document = {
        "benchmark": "tcp_deadlock",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "stall_seconds": STALL,
        "stall_points": stalls,
        "throughput": speeds,
    }
    (RESULTS / "tcp_deadlock.json").write_text(json.dumps(document, indent=2) + "\n")

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [str(r["server_buffer"]) for r in stalls]
    left.bar(labels, [(r["stalled_after_bytes"] or 0) / 1e6 for r in stalls])  # type: ignore[operator]
    left.set_title("naive client: MB sent before the deadlock")
    left.set_xlabel("server SO_RCVBUF/SO_SNDBUF")
    left.set_ylabel("MB")
    for mode in ("concurrent", "halfclose"):
        points = [(r["bytes"], r["MB_per_s"]) for r in speeds if r["mode"] == mode and r["ok"]]
        if points:
            xs, ys = zip(*points, strict=True)
            right.plot([x / 2**20 for x in xs], ys, marker="o", label=mode)  # type: ignore[operator]
    right.set_xscale("log", base=2)
    right.set_title("echo throughput (halfclose stops where it stalls)")
    right.set_xlabel("MiB sent")
    right.set_ylabel("MB/s")
    right.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "tcp_deadlock.png", dpi=100)
    print(f"wrote {RESULTS / 'tcp_deadlock.json'} and tcp_deadlock.png")


if __name__ == "__main__":
    main()
