"""Benchmark for chapter 8: what a read-through memcached cache buys, and what a hit costs.

Side by side in one run, against a real memcached on loopback started for the run:

1. the book's squares benchmark (10 rounds of 2000 lookups of n in 0..5000) for several costs
   of the "expensive" function, from free (0 ms: the cache can only lose) to 2 ms; each
   round's time and hit ratio, and the speed-up of the last round over the first (the
   wall-clock claim the chapter makes, "a warm cache is faster when a miss costs 1 ms or
   more", is checked here, not in the test suite: it depends on the machine's load);
2. the cost of one operation on loopback: a get that hits, a get that misses, a set.

Writes ``bench/results/cache.json`` and ``bench/results/cache.png``::

    .venv/bin/python bench/cache_bench.py
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from wirelab.cache.cluster import CacheCluster
from wirelab.cache.daemon import MemcachedDaemon
from wirelab.cache.readthrough import run_squares

RESULTS = Path(__file__).resolve().parent / "results"
DELAYS = (0.0, 0.0005, 0.001, 0.002)
OPS = 5000
#: The speed-up of the last round over the first that a miss of 1 ms or more should give.
EXPECTED_SPEEDUP = 1.5


def squares(daemon: MemcachedDaemon) -> list[dict[str, object]]:
    runs = []
    for delay in DELAYS:
        with CacheCluster([daemon.address], namespace=f"b{secrets.token_hex(3)}:") as cluster:
            report = run_squares(cluster, delay=delay, seed=8)
        row = report.to_json()
        if delay >= 0.001:
            row["speedup_expected"] = EXPECTED_SPEEDUP
            row["speedup_met"] = report.speedup > EXPECTED_SPEEDUP
        runs.append(row)
        verdict = ""
        if "speedup_met" in row:
            met = "met" if row["speedup_met"] else "NOT MET (a loaded machine?)"
            verdict = f" (expected > {EXPECTED_SPEEDUP}x: {met})"
        print(
            f"delay {delay * 1000:g} ms: hit ratio {report.hit_ratio:.1%}, "
            f"first round {report.rounds[0].seconds:.3f} s, last {report.rounds[-1].seconds:.3f} s,"
            f" speed-up {report.speedup:.1f}x{verdict}"
        )
    return runs


def op_costs(daemon: MemcachedDaemon) -> dict[str, float]:
    with CacheCluster([daemon.address], namespace="ops:") as cluster:
        cluster.set("hit", b"42")

        def timed(call: object) -> float:
            assert callable(call)
            began = time.perf_counter()
            for _ in range(OPS):
                call()
            return (time.perf_counter() - began) / OPS * 1e6

        costs = {
            "get_hit_us": timed(lambda: cluster.get("hit")),
            "get_miss_us": timed(lambda: cluster.get("nothing-here")),
            "set_us": timed(lambda: cluster.set("hit", b"42")),
        }
    print(", ".join(f"{k} {v:.1f}" for k, v in costs.items()))
    return costs


def chart(results: dict[str, object], path: Path) -> None:
    runs = results["squares"]
    assert isinstance(runs, list)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        rounds = run["rounds"]
        label = f"miss costs {run['delay'] * 1000:g} ms (speed-up {run['speedup']}x)"
        left.plot([r["round"] for r in rounds], [r["seconds"] for r in rounds], "o-", label=label)
        right.plot([r["round"] for r in rounds], [r["hit_ratio"] for r in rounds], "o-")
    left.set_xlabel("round (2000 lookups each)")
    left.set_ylabel("seconds per round")
    left.set_title("a read-through cache warming up (memcached on loopback)")
    left.legend(fontsize="small")
    right.set_xlabel("round")
    right.set_ylabel("hit ratio")
    right.set_ylim(0, 1)
    right.set_title("hit ratio per round (same seed, so the same for every cost)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    with MemcachedDaemon(port=0) as daemon:
        results: dict[str, object] = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "ops": op_costs(daemon),
            "squares": squares(daemon),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cache.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, RESULTS / "cache.png")
    print(f"wrote {RESULTS / 'cache.json'} and {RESULTS / 'cache.png'}")


if __name__ == "__main__":
    main()
