"""Benchmark for chapter 6: what a TLS handshake costs, by server key and TLS version.

Side by side in one run: ``wirelab tls serve`` (a child process, as a user runs it) with an
EC P-256, an RSA 2048 and an RSA 3072 certificate from one CA; one client makes N sequential
verified connections (TCP connect, handshake, read the greeting, close) with TLS 1.2 and with
TLS 1.3, and the same number of plain TCP connects to the same port as the floor. Reports
connections per second and each one's cost relative to EC P-256 over TLS 1.3.

Writes ``bench/results/tls.json`` and ``bench/results/tls.png``::

    .venv/bin/python bench/tls_bench.py
"""

from __future__ import annotations

import json
import os
import platform
import select
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from wirelab.net.ca import LabCA
from wirelab.tls.client import fetch, make_client_context

RESULTS = Path(__file__).resolve().parent / "results"
N = 100
ROUNDS = 3
MAX_SECONDS = 60.0
KEYS = (("EC P-256", "ec", 0), ("RSA 2048", "rsa", 2048), ("RSA 3072", "rsa", 3072))
VERSIONS = (("TLS 1.2", ssl.TLSVersion.TLSv1_2), ("TLS 1.3", ssl.TLSVersion.TLSv1_3))


def start_server(cert: Path, key: Path, home: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wirelab",
            "tls",
            "serve",
            "-p",
            "0",
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        env=dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stderr.readline()
        if "listening at TLS" in line:
            # drain its log (one line per failed handshake) so the pipe never fills
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(line.split("127.0.0.1:")[1].split(",")[0])
    proc.kill()
    raise RuntimeError("the server did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def rate(port: int, ctx: ssl.SSLContext) -> float:
    """Verified connections per second: connect, handshake, read the greeting, close."""
    began = time.perf_counter()
    done = 0
    while done < N and time.perf_counter() - began < MAX_SECONDS:
        got = fetch("127.0.0.1", port, context=ctx, servername="localhost")
        assert got.text.startswith("Simple")
        done += 1
    return done / (time.perf_counter() - began)


def measure(ca: LabCA, home: Path) -> list[dict[str, object]]:
    """All servers up at once; configurations interleaved over ROUNDS rounds; the median."""
    servers: list[tuple[str, subprocess.Popen[str], int]] = []
    try:
        for label, kind, bits in KEYS:
            issued = ca.issue(["localhost"], key=kind, rsa_bits=bits or 2048)
            cert, key = issued.write(home, f"{kind}{bits}")
            proc, port = start_server(cert, key, home)
            servers.append((label, proc, port))
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for label, _, port in servers:
                for vlabel, version in VERSIONS:
                    ctx = make_client_context(cafile=ca.cert_path)
                    ctx.maximum_version = version
                    samples.setdefault((label, vlabel), []).append(rate(port, ctx))
    finally:
        for _, proc, _ in servers:
            stop(proc)
    return [
        {"key": k, "version": v, "per_second": statistics.median(xs), "samples": xs}
        for (k, v), xs in samples.items()
    ]


def chart(rows: list[dict[str, object]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [label for label, _, _ in KEYS]
    for i, (series, _) in enumerate(VERSIONS):
        values = [
            next(
                float(str(r["per_second"])) for r in rows if (r["key"], r["version"]) == (k, series)
            )
            for k in labels
        ]
        ax.bar([x + i * 0.4 for x in range(len(labels))], values, width=0.4, label=series)
    ax.set_xticks([x + 0.2 for x in range(len(labels))], labels)
    ax.set_ylabel("verified connections per second")
    ax.set_title(f"wirelab tls serve: sequential verified connections (median of {ROUNDS} x {N})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wirelab-tls-bench-") as tmp:
        home = Path(tmp)
        rows = measure(LabCA.load_or_create(home / "ca"), home)
    base = next(
        float(str(r["per_second"]))
        for r in rows
        if (r["key"], r["version"]) == ("EC P-256", "TLS 1.3")
    )
    for row in rows:
        speed = float(str(row["per_second"]))
        row["per_second"] = round(speed, 1)
        row["cost_vs_ec_tls13"] = round(base / speed, 2)
        print(f"{row['key']:9} {row['version']:8} {speed:8.1f}/s  cost x{row['cost_vs_ec_tls13']}")
    results = {
        "connections_per_sample": N,
        "rounds": ROUNDS,
        "machine": {
            "python": platform.python_version(),
            "openssl": ssl.OPENSSL_VERSION,
            "cpus": os.cpu_count(),
        },
        "rows": rows,
    }
    (RESULTS / "tls.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(rows, RESULTS / "tls.png")


if __name__ == "__main__":
    main()
