"""Benchmark for chapter 10: requests/s and p99 of the time app under each server, with wrk.

Configurations, all running side by side for the whole run, each loaded at 1, 10 and 100
connections in turn, round after round (so a burst of other work on the shared machine hits
every configuration, not one):

* ``default``: ``wirelab http serve`` itself, run as a user runs it (a child process started
  by the CLI): gunicorn with our ``linger`` worker (gthread whose threads wait on one shared
  ``epoll`` themselves, no hand-off per request: :mod:`wirelab.http.worker`), one worker
  process per CPU, 8 threads each, no access log;
* ``gunicorn-gthread``: gunicorn's own gthread worker, one process, otherwise the same;
* ``gunicorn-sync``: the book's worker (one request at a time per worker, no keep-alive);
* ``waitress``: in a child process (4 threads);
* ``wsgiref``: the standard library (HTTP/1.0, a connection per request);
* ``nginx+gunicorn``: nginx in front of one gunicorn process (the default worker);
* ``nginx-fixed``: nginx answering a fixed body itself: this machine's ceiling.

Optional (``--configs``): ``default+log`` (``http serve --access-log``, the log to a file),
``gunicorn-linger-1w`` (the default's worker in one process, to separate the worker's gain
from the second process's).

Every other Python server runs in one process (waitress and wsgiref cannot use more; with
the GIL one process runs Python on one core at a time), so besides requests/s each point
records the CPU time (user + system, the server's whole process tree) per request, which
does not depend on how many processes share the work. The load generator is wrk (C, one
thread; two at 100 connections), ``--seconds`` per point after one warm-up. The time app
answers ``Host: 127.0.0.1`` and ``/`` with 200. Each point is the median of the rounds with
its range, and the goal's ratio (the default over the fastest Python configuration) is
taken within each round, then summarised.

Writes ``bench/results/http.json``, ``http.md`` and ``http.png``::

    .venv/bin/python bench/http_bench.py [--rounds 2] [--seconds 2] [--configs a,b,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
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
ROUNDS = 2
CONNECTIONS = (1, 10, 100)
CONFIGS = (
    "default",
    "gunicorn-gthread",
    "gunicorn-sync",
    "waitress",
    "wsgiref",
    "nginx+gunicorn",
    "nginx-fixed",
)
OPTIONAL = ("default+log", "gunicorn-linger-1w")
#: What ``wirelab http serve`` runs by default (the decision this benchmark informs).
DEFAULT = "default"
#: Not Python: the ceiling, left out of "the fastest Python configuration".
NOT_PYTHON = ("nginx-fixed",)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu(roots: tuple[int, ...]) -> float:
    """CPU seconds (user + system) used so far by processes ``roots`` and their descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


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
def _cli_serve(extra: list[str], tmp: Path, name: str) -> Iterator[tuple[int, tuple[int, ...]]]:
    """``wirelab http serve -p 0 EXTRA`` as a child; yields the port it reports."""
    log = open(tmp / f"{name}.out", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "http", "serve", "-p", "0", *extra],
        stdout=log,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "listening at" not in line:
            line = proc.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"http serve did not start: {line!r}")
        yield int(match.group(1)), (proc.pid,)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
        log.close()


@contextlib.contextmanager
def serving(config: str, tmp: Path) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Start ``config``; yield the port the load goes to and the PID of its process tree."""
    from wirelab.http.nginx import NginxProcess
    from wirelab.http.server import GunicornProcess, listen

    if config == "default":
        with _cli_serve([], tmp, config) as served:
            yield served
        return
    if config == "default+log":
        with _cli_serve(["--access-log"], tmp, config) as served:
            yield served
        return
    if config == "nginx-fixed":
        with NginxProcess("127.0.0.1", 0, None) as proxy:
            proxy.start()
            assert proxy.process is not None
            yield proxy.port, (proxy.process.pid,)
        return
    if config in ("waitress", "wsgiref"):
        ctx = mp.get_context("spawn")
        ports, stop = ctx.Queue(), ctx.Event()
        proc = ctx.Process(target=_threaded, args=(config, ports, stop))
        proc.start()
        try:
            assert proc.pid is not None
            yield ports.get(timeout=30), (proc.pid,)
        finally:
            stop.set()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        return
    worker = {"gunicorn-sync": "sync", "gunicorn-gthread": "gthread"}.get(config, "linger")
    with GunicornProcess(
        "wirelab.http.apps:build('time-raw')",
        listen("127.0.0.1", 0),
        worker_class=worker,
        workers=1,
        forwarded_allow_ips="127.0.0.1",
        logfile=tmp / f"{config}.log",
    ) as backend:
        backend.spawn()
        backend.wait_ready()
        if config.startswith("nginx"):
            with NginxProcess("127.0.0.1", 0, backend.address) as proxy:
                proxy.start()
                assert proxy.process is not None
                yield proxy.port, (proxy.process.pid, backend.pid)
        else:
            yield backend.address[1], (backend.pid,)


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
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def chart(summary: dict[str, dict[str, dict[str, float]]], configs: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / len(CONNECTIONS)
    for i, conns in enumerate(CONNECTIONS):
        xs = [j + i * width for j in range(len(configs))]
        points = [summary[c][str(conns)] for c in configs]
        rps = [p["rps"] for p in points]
        spread = [
            [p["rps"] - p["rps_min"] for p in points],
            [p["rps_max"] - p["rps"] for p in points],
        ]
        left.bar(xs, rps, width, yerr=spread, capsize=2, label=f"{conns} conn")
        right.bar(xs, [p["p99_ms"] for p in points], width, label=f"{conns} conn")
    for ax, title in ((left, "requests/s (median, bars: range)"), (right, "p99 latency (ms)")):
        ax.set_xticks([j + width for j in range(len(configs))])
        ax.set_xticklabels(configs, rotation=20, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    left.set_yscale("log")
    right.set_yscale("log")
    fig.suptitle("chapter 10: the time app under each server (wrk, loopback, side by side)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    from wirelab.http.server import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for http.*")
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS) - set(OPTIONAL)
    if unknown or DEFAULT not in configs:
        sys.exit(f"--configs: unknown {sorted(unknown)} (and {DEFAULT!r} must be one)")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        c: {str(n): [] for n in CONNECTIONS} for c in configs
    }
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        served = {c: stack.enter_context(serving(c, Path(tmp))) for c in configs}
        ports = {c: port for c, (port, _) in served.items()}
        for config in configs:
            wrk(ports[config], 4, 1)  # warm-up
        for rnd in range(args.rounds):
            for config in configs:
                for conns in CONNECTIONS:
                    pids = served[config][1]
                    before = tree_cpu(pids)
                    row = wrk(ports[config], conns, args.seconds)
                    row["cpu_us_per_request"] = (
                        (tree_cpu(pids) - before) * 1e6 / max(row["requests"], 1)
                    )
                    runs[config][str(conns)].append(row)
                    print(
                        f"round {rnd + 1} {config:20} {conns:4} conn  {row['rps']:9.0f} req/s  "
                        f"p99 {row['p99_ms']:8.2f} ms  cpu {row['cpu_us_per_request']:6.0f} us/req"
                        f"  errors {row['errors']}",
                        flush=True,
                    )
            load.append(os.getloadavg()[0])
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for config in configs:
        summary[config] = {}
        for conns in CONNECTIONS:
            rows = runs[config][str(conns)]
            summary[config][str(conns)] = {
                "rps": statistics.median(r["rps"] for r in rows),
                "rps_min": min(r["rps"] for r in rows),
                "rps_max": max(r["rps"] for r in rows),
                "p99_ms": statistics.median(r["p99_ms"] for r in rows),
                "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in rows),
                "errors": sum(r["errors"] for r in rows),
                "non_2xx": sum(r["non_2xx"] for r in rows),
            }
    python = [c for c in configs if c not in NOT_PYTHON]
    ratios: dict[str, dict[str, Any]] = {}
    for conns in CONNECTIONS:
        per_round = []
        fastest = []
        for rnd in range(args.rounds):
            rps = {c: runs[c][str(conns)][rnd]["rps"] for c in python}
            best = max(rps, key=lambda c: rps[c])
            per_round.append(rps[DEFAULT] / rps[best])
            fastest.append(best)
        ratios[str(conns)] = {
            "median": statistics.median(per_round),
            "min": min(per_round),
            "max": max(per_round),
            "per_round": per_round,
            "fastest_per_round": fastest,
        }
    document = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1min": load,
            "when": time.strftime("%Y-%m-%d %H:%M"),
        },
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "default": DEFAULT,
        "default_is": "wirelab http serve: gunicorn, linger worker (threads poll), "
        f"{default_workers()} workers (one per CPU), 8 threads each, no access log",
        "default_over_fastest_python": ratios,
        "summary": summary,
        "runs": runs,
    }
    out: Path = args.out
    out.mkdir(exist_ok=True)
    (out / "http.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        f"{args.rounds} rounds of {args.seconds} s per point; median req/s [range] (median p99 ms)",
        "",
        "| server | " + " | ".join(f"{c} conn" for c in CONNECTIONS) + " |",
        "|---|" + "---|" * len(CONNECTIONS),
    ]
    for config in configs:
        cells = []
        for c in CONNECTIONS:
            p = summary[config][str(c)]
            cells.append(
                f"{p['rps']:.0f} [{p['rps_min']:.0f}-{p['rps_max']:.0f}] ({p['p99_ms']:.1f})"
            )
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "CPU time of the server (all its processes) per request, median, in microseconds:",
        "",
        "| server | " + " | ".join(f"{c} conn" for c in CONNECTIONS) + " |",
        "|---|" + "---|" * len(CONNECTIONS),
    ]
    for config in configs:
        cells = [f"{summary[config][str(c)]['cpu_us_per_request']:.0f}" for c in CONNECTIONS]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "default (http serve) over the fastest Python configuration, per round: "
        + "; ".join(
            f"{c} conn {ratios[str(c)]['median']:.2f} "
            f"[{ratios[str(c)]['min']:.2f}-{ratios[str(c)]['max']:.2f}]"
            for c in CONNECTIONS
        )
    )
    lines.append(f"load average (1 min) during the run: {min(load):.1f} to {max(load):.1f}")
    lines.append(f"default: {document['default_is']}")
    (out / "http.md").write_text("\n".join(lines) + "\n")
    chart(summary, configs, out / "http.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
