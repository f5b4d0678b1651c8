"""Benchmark for chapter 10: requests/s and p99 of the time app under each server, with wrk.

Configurations, side by side in one run, each at 1, 10 and 100 connections:

* ``gunicorn-sync``: the book's worker (one request at a time per worker);
* ``gunicorn-gthread``: ``http serve``'s default (8 threads, keep-alive);
* ``waitress``: in a child process (4 threads);
* ``wsgiref``: the standard library (HTTP/1.0, a connection per request);
* ``nginx+gunicorn``: ``http serve --behind-nginx`` (gthread behind nginx);
* ``nginx-fixed``: nginx answering a fixed body itself: this machine's ceiling.

Every Python server gets one process (gunicorn one worker), so they compete on equal terms;
the load generator is wrk (C, one thread; two at 100 connections), run for ``SECONDS`` per
point after a short warm-up. The time app answers ``Host: 127.0.0.1`` and ``/`` with 200.
The machine is shared (other work runs beside it): read the figures as a comparison within
one run, not as absolutes.

Writes ``bench/results/http.json``, ``http.md`` and ``http.png``::

    .venv/bin/python bench/http_bench.py
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: Seconds of load per point.
SECONDS = 2
CONNECTIONS = (1, 10, 100)
CONFIGS = (
    "gunicorn-sync",
    "gunicorn-gthread",
    "waitress",
    "wsgiref",
    "nginx+gunicorn",
    "nginx-fixed",
)
#: What ``wirelab http serve`` runs by default (the decision this benchmark informs).
DEFAULT = "gunicorn-gthread"


def _threaded(kind: str, ports: Any, stop: Any) -> None:
    import logging

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N"
    from wirelab.http.apps import build
    from wirelab.http.server import listen, start_waitress, start_wsgiref

    starter = start_waitress if kind == "waitress" else start_wsgiref
    sock = listen("127.0.0.1", 0)
    with starter(build("time-raw"), sock) as server:
        ports.put(server.address[1])
        stop.wait()


@contextlib.contextmanager
def serving(config: str, tmp: Path) -> Iterator[int]:
    """Start ``config``; yield the port the load goes to."""
    from wirelab.http.nginx import NginxProcess
    from wirelab.http.server import GunicornProcess, listen

    if config == "nginx-fixed":
        with NginxProcess("127.0.0.1", 0, None) as proxy:
            proxy.start()
            yield proxy.port
        return
    if config in ("waitress", "wsgiref"):
        ctx = mp.get_context("spawn")
        ports, stop = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=_threaded, args=(config, ports, stop))
        proc.start()
        try:
            yield ports.get(timeout=30)
        finally:
            stop.set()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        return
    worker = "sync" if config == "gunicorn-sync" else "gthread"
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')",
        listen("127.0.0.1", 0),
        worker_class=worker,
        forwarded_allow_ips="127.0.0.1",
        logfile=tmp / f"{config}.log",
    ) as backend:
        backend.spawn()
        backend.wait_ready()
        if config.startswith("nginx"):
            with NginxProcess("127.0.0.1", 0, backend.address) as proxy:
                proxy.start()
                yield proxy.port
        else:
            yield backend.address[1]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(port: int, connections: int, seconds: int) -> dict[str, float]:
    """One wrk run; requests/s, p50 and p99 in ms, errors."""
    threads = 2 if connections >= 100 else 1
    done = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-H",
            "Host: 127.0.0.1",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def chart(results: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(CONNECTIONS)
    for i, conns in enumerate(CONNECTIONS):
        xs = [j + i * width for j in range(len(CONFIGS))]
        left.bar(xs, [results[c][str(conns)]["rps"] for c in CONFIGS], width, label=f"{conns} conn")
        right.bar(
            xs, [results[c][str(conns)]["p99_ms"] for c in CONFIGS], width, label=f"{conns} conn"
        )
    for ax, title in ((left, "requests/s"), (right, "p99 latency (ms)")):
        ax.set_xticks([j + width for j in range(len(CONFIGS))])
        ax.set_xticklabels(CONFIGS, rotation=20, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    right.set_yscale("log")
    fig.suptitle("chapter 10: the time app under each server (wrk, loopback)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in CONFIGS:
            with serving(config, Path(tmp)) as port:
                wrk(port, 4, 1)  # warm-up
                results[config] = {}
                for conns in CONNECTIONS:
                    results[config][str(conns)] = row = wrk(port, conns, SECONDS)
                    print(
                        f"{config:18} {conns:4} conn  {row['rps']:9.0f} req/s  "
                        f"p99 {row['p99_ms']:8.2f} ms  errors {row['errors']}",
                        flush=True,
                    )
    python = [c for c in CONFIGS if c != "nginx-fixed"]
    ratios = {}
    for conns in CONNECTIONS:
        best = max(results[c][str(conns)]["rps"] for c in python)
        ratios[str(conns)] = results[DEFAULT][str(conns)]["rps"] / best
    document = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
            "when": time.strftime("%Y-%m-%d %H:%M"),
        },
        "seconds_per_point": SECONDS,
        "default": DEFAULT,
        "default_over_fastest_python": ratios,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        "| server | " + " | ".join(f"{c} conn req/s (p99 ms)" for c in CONNECTIONS) + " |",
        "|---|" + "---|" * len(CONNECTIONS),
    ]
    for config in CONFIGS:
        cells = [
            f"{results[config][str(c)]['rps']:.0f} ({results[config][str(c)]['p99_ms']:.1f})"
            for c in CONNECTIONS
        ]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "default ("
        + DEFAULT
        + ") over the fastest Python configuration: "
        + ", ".join(f"{c} conn {ratios[str(c)]:.2f}" for c in CONNECTIONS)
    )
    (RESULTS / "http.md").write_text("\n".join(lines) + "\n")
    chart(results, RESULTS / "http.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
