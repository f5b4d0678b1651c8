"""Benchmark for chapter 13: messages per second accepted over SMTP, our mail host beside a sink.

Side by side in one run, over loopback, each server in its own child process:

* ``lab``: our SMTP server (aiosmtpd with our handler) delivering into a Maildir, every
  message written to ``tmp/``, fsynced, renamed into ``new/`` and the directory fsynced
  before its 250 (no group commit, nothing acknowledged early);
* ``sink``: a plain aiosmtpd server whose handler answers 250 and writes nothing.

For 1 KiB and 1 MiB messages, with 1 and 10 clients (threads, one smtplib connection each,
sending as fast as they can for :data:`SECONDS`), it reports messages/s and the lab's share of
the sink's rate (the issue's goal: at least 0.7). Writes ``bench/results/smtp.json``::

    .venv/bin/python bench/smtp_bench.py

The whole run takes about 30 s (``SMTP_BENCH_SECONDS`` per cell, default 2.5).
"""

from __future__ import annotations

import json
import os
import platform
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SECONDS = float(os.environ.get("SMTP_BENCH_SECONDS", "2.5"))
SIZES = {"1KiB": 1 << 10, "1MiB": 1 << 20}
CLIENTS = (1, 10)

_SERVER = r"""
import asyncio, sys
from pathlib import Path
from aiosmtpd.smtp import SMTP
from wirelab.mail.store import MailStore
from wirelab.smtp.server import SMTPSettings, open_smtp_server

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main(kind, root):
    loop = asyncio.get_running_loop()
    if kind == "lab":
        store = MailStore(Path(root))
        store.add_account("brandon", "abc123")
        server = await open_smtp_server("127.0.0.1", 0, SMTPSettings(store))
    else:
        server = await loop.create_server(
            lambda: SMTP(Sink(), data_size_limit=10240000), "127.0.0.1", 0
        )
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _message(size: int) -> bytes:
    head = b"From: bench@example.org\r\nTo: brandon@example.com\r\nSubject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def _start(kind: str, root: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, kind, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("PORT "):
        child.kill()
        raise SystemExit(f"the {kind} server did not start: {line!r}")
    return child, int(line.split()[1])


def _run(port: int, data: bytes, clients: int) -> float:
    counts = [0] * clients
    stop = time.monotonic() + SECONDS

    def client(index: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
            while time.monotonic() < stop:
                conn.sendmail("bench@example.org", ["brandon@example.com"], data)
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def _durable_write_ms(directory: Path, rounds: int = 50) -> float:
    """Milliseconds one durable Maildir write takes here (write, fsync, rename, fsync dir)."""
    from wirelab.mail.store import MailStore

    store = MailStore(directory)
    store.add_account("bench", "bench")
    started = time.perf_counter()
    for _ in range(rounds):
        store.deliver("bench", b"x" * 1024)
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        durable_ms = _durable_write_ms(Path(tmp) / "probe")
        print(f"one durable 1 KiB delivery on this disk: {durable_ms:.2f} ms", flush=True)
        servers = {kind: _start(kind, Path(tmp) / kind) for kind in ("lab", "sink")}
        try:
            for label, size in SIZES.items():
                data = _message(size)
                for clients in CLIENTS:
                    cell = f"{label} x{clients}"
                    row = {kind: _run(port, data, clients) for kind, (_, port) in servers.items()}
                    row["ratio"] = row["lab"] / row["sink"] if row["sink"] else 0.0
                    results[cell] = row
                    print(
                        f"{cell:10} lab {row['lab']:8.1f} msg/s   sink {row['sink']:8.1f} msg/s"
                        f"   ratio {row['ratio']:.2f}",
                        flush=True,
                    )
        finally:
            for child, _ in servers.values():
                child.kill()
                child.wait()
                if child.stdout is not None:
                    child.stdout.close()
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "smtp messages/s accepted, fsync on (lab) vs aiosmtpd sink",
        "seconds_per_cell": SECONDS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "durable_write_ms": durable_ms,
        "note": (
            "With one client every message waits for its own fsyncs, so the lab's rate is at "
            "most 1 / (sink time per message + durable_write_ms); group commit (a shared "
            "directory fsync) helps only concurrent clients."
        ),
        "results": results,
    }
    (RESULTS / "smtp.json").write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
