"""Benchmark for chapter 13: messages per second accepted over SMTP, our mail host beside a sink.

Side by side in one run, over loopback, each server in its own child process:

* ``lab``: our SMTP server (aiosmtpd with our handler). Every message is appended to the
  store's spool journal and ``fdatasync``-ed before its 250 (concurrent messages share one
  sync: group commit; decision 0122); right after, the Maildir writer delivers it (data
  fdatasynced under ``tmp/``, renamed into ``new/``, ``new/`` fsynced, decision 0121) and
  checkpoints it in the journal. Nothing is acknowledged before it is on disk;
* ``sink``: a plain aiosmtpd server whose handler answers 250 and writes nothing.

For 1 KiB and 1 MiB messages, with 1 and 10 clients (threads, one smtplib connection each,
sending as fast as they can), each cell is measured in :data:`ROUNDS` rounds of
:data:`SECONDS` per server, lab and sink alternating (which goes first alternates too), so
both see the same moment of a shared machine. The lab's share of the sink's rate is computed
per round; the median and the spread (min to max) are reported. The issue's goal: 0.7.

Before and after, it measures what this disk charges for durability alone (medians): a
1 KiB file written and fdatasynced, a directory fsync after a rename, a whole durable Maildir
delivery through :class:`~wirelab.mail.store.MailStore`, and what the 250 now waits for: a
1 KiB record appended to a spool journal segment and synced
(:class:`~wirelab.mail.spool.Spool`). With one client a message waits for its own journal
sync, so the lab's 1 KiB rate can be at most ``sink_ms / (sink_ms + journal_ms)`` of the
sink's: the ``one_client_bound`` in the results (before the journal it was
``sink_ms / (sink_ms + durable_ms)``, also reported as ``maildir_one_client_bound``).

    .venv/bin/python bench/smtp_bench.py     # about 60 s; writes bench/results/smtp.{json,png}

``SMTP_BENCH_SECONDS`` (default 2) and ``SMTP_BENCH_ROUNDS`` (default 3) change the run.
"""

from __future__ import annotations

import json
import os
import platform
import smtplib
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

RESULTS = Path(__file__).resolve().parent / "results"
SECONDS = float(os.environ.get("SMTP_BENCH_SECONDS", "2"))
ROUNDS = int(os.environ.get("SMTP_BENCH_ROUNDS", "3"))
SIZES = {"1KiB": 1 << 10, "1MiB": 1 << 20}
CLIENTS = (1, 10)
GOAL = 0.7

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
    """Messages/s accepted by the server on ``port`` from ``clients`` connections."""
    counts = [0] * clients
    errors: list[BaseException] = []
    stop = time.monotonic() + SECONDS

    def client(index: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as conn:
                while True:  # at least one message each, however slow
                    conn.sendmail("bench@example.org", ["brandon@example.com"], data)
                    counts[index] += 1
                    if time.monotonic() >= stop:
                        break
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"a client failed: {errors[0]!r}")
    return sum(counts) / (time.monotonic() - started)


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def disk_costs(directory: Path) -> dict[str, float]:
    """What durability alone costs on this disk (milliseconds, medians)."""
    from wirelab.mail.spool import Spool
    from wirelab.mail.store import MailStore

    directory.mkdir(parents=True)
    (directory / "tmp").mkdir()
    (directory / "new").mkdir()
    one_kib = b"x" * 1024
    fdatasync, dir_fsync = [], []
    for n in range(40):
        tmp, new = directory / "tmp" / str(n), directory / "new" / str(n)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, one_kib)
        started = time.perf_counter()
        os.fdatasync(fd)
        fdatasync.append(time.perf_counter() - started)
        os.close(fd)
        os.rename(tmp, new)
        dfd = os.open(directory / "new", os.O_RDONLY | os.O_DIRECTORY)
        started = time.perf_counter()
        os.fsync(dfd)
        dir_fsync.append(time.perf_counter() - started)
        os.close(dfd)
    store = MailStore(directory / "store")
    store.add_account("bench", "bench")
    deliveries: dict[int, list[float]] = {1 << 10: [], 1 << 20: []}
    for size, rounds in ((1 << 10, 40), (1 << 20, 8)):
        data = _message(size)
        for _ in range(rounds):
            started = time.perf_counter()
            store.deliver("bench", data)
            deliveries[size].append(time.perf_counter() - started)
    spool = Spool(directory / "spool")
    journal: list[float] = []
    data = _message(1 << 10)
    for n in range(60):
        started = time.perf_counter()
        ((segment, _),) = spool.append([(f"bench{n}", ("bench",), data)])
        spool.sync(segment)
        journal.append(time.perf_counter() - started)
    journal = journal[1:]  # the first one made the segment (its zeros written and synced)
    return {
        "journal_append_sync_1KiB_ms": _median_ms(journal),
        "fdatasync_1KiB_ms": _median_ms(fdatasync),
        "dir_fsync_ms": _median_ms(dir_fsync),
        "durable_delivery_1KiB_ms": _median_ms(deliveries[1 << 10]),
        "durable_delivery_1MiB_ms": _median_ms(deliveries[1 << 20]),
    }


def measure(tmp: Path) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    servers = {kind: _start(kind, tmp / kind) for kind in ("lab", "sink")}
    try:
        for label, size in SIZES.items():
            data = _message(size)
            for clients in CLIENTS:
                cell = f"{label} x{clients}"
                lab_rates: list[float] = []
                sink_rates: list[float] = []
                for round_ in range(ROUNDS):
                    order = ("lab", "sink") if round_ % 2 == 0 else ("sink", "lab")
                    rates = {kind: _run(servers[kind][1], data, clients) for kind in order}
                    lab_rates.append(rates["lab"])
                    sink_rates.append(rates["sink"])
                ratios = [lab / sink for lab, sink in zip(lab_rates, sink_rates, strict=True)]
                results[cell] = {
                    "lab": statistics.median(lab_rates),
                    "sink": statistics.median(sink_rates),
                    "ratio": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                    "lab_rounds": lab_rates,
                    "sink_rounds": sink_rates,
                    "ratio_rounds": ratios,
                }
                print(
                    f"{cell:9} lab {statistics.median(lab_rates):7.1f} msg/s  "
                    f"sink {statistics.median(sink_rates):7.1f} msg/s  ratio "
                    f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
                    flush=True,
                )
    finally:
        for child, _ in servers.values():
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
    return results


def chart(document: dict[str, object], path: Path) -> None:
    results = document["results"]
    disk = document["disk"]
    assert isinstance(results, dict) and isinstance(disk, dict)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), width_ratios=(3, 2))
    cells = list(results)
    for x, cell in enumerate(cells):
        row = results[cell]
        left.bar(x, row["ratio"], color="tab:blue", width=0.6)
        left.errorbar(
            x,
            row["ratio"],
            yerr=[[row["ratio"] - row["ratio_min"]], [row["ratio_max"] - row["ratio"]]],
            color="black",
            capsize=4,
        )
        left.scatter([x] * len(row["ratio_rounds"]), row["ratio_rounds"], color="black", s=8)
        left.annotate(
            f"{row['lab']:.0f} / {row['sink']:.0f}",
            (x, 0.02),
            ha="center",
            color="white",
            fontsize=8,
        )
    left.axhline(GOAL, color="tab:red", linestyle="--", label=f"goal {GOAL}")
    left.set_xticks(range(len(cells)), cells)
    left.set_ylabel("lab msg/s / sink msg/s (median, min-max of rounds)")
    left.set_title("SMTP accepted, fsync on, beside an aiosmtpd sink\n(bars: lab / sink msg/s)")
    left.legend(loc="upper left")
    one = results["1KiB x1"]
    sink_ms = 1000 / one["sink"]
    lab_ms = 1000 / one["lab"]
    labels = [
        "sink: one\nmessage",
        "lab: one\nmessage",
        "journal\nsync 1 KiB",
        "fdatasync\n1 KiB",
        "fsync\nnew/",
        "Maildir\ndelivery",
    ]
    values = [
        sink_ms,
        lab_ms,
        disk["journal_append_sync_1KiB_ms"],
        disk["fdatasync_1KiB_ms"],
        disk["dir_fsync_ms"],
        disk["durable_delivery_1KiB_ms"],
    ]
    colors = ["tab:gray", "tab:blue", "tab:green", "tab:orange", "tab:orange", "tab:red"]
    right.bar(range(len(values)), values, color=colors)
    right.axhline(sink_ms * (1 / GOAL - 1), color="tab:red", linestyle="--", linewidth=1)
    right.annotate(
        f"0.7 allows {sink_ms * (1 / GOAL - 1):.2f} ms extra",
        (-0.4, sink_ms * (1 / GOAL - 1)),
        ha="left",
        va="bottom",
        fontsize=8,
        color="tab:red",
    )
    right.set_xticks(range(len(values)), labels, fontsize=8)
    right.set_ylabel("milliseconds (medians)")
    right.set_title(
        f"1 KiB, one client: bound sink/(sink+journal) = {document['one_client_bound']:.2f}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wirelab-smtp-bench-") as tmp:
        before = disk_costs(Path(tmp) / "probe-before")
        print("disk before:", ", ".join(f"{k} {v:.2f}" for k, v in before.items()), flush=True)
        results = measure(Path(tmp))
        after = disk_costs(Path(tmp) / "probe-after")
        print("disk after: ", ", ".join(f"{k} {v:.2f}" for k, v in after.items()), flush=True)
    disk = {key: (before[key] + after[key]) / 2 for key in before}
    sink_ms = 1000 / float(str(results["1KiB x1"]["sink"]))
    bound = sink_ms / (sink_ms + disk["journal_append_sync_1KiB_ms"])
    maildir_bound = sink_ms / (sink_ms + disk["durable_delivery_1KiB_ms"])
    print(
        f"1 KiB x1: sink {sink_ms:.2f} ms/message; bound with one client {bound:.2f} "
        f"(it was {maildir_bound:.2f} with the 250 after the Maildir's two syncs)"
    )
    document: dict[str, object] = {
        "benchmark": "smtp messages/s accepted, fsync on (lab) vs aiosmtpd sink",
        "seconds_per_run": SECONDS,
        "rounds": ROUNDS,
        "goal": GOAL,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "disk": disk,
        "disk_before": before,
        "disk_after": after,
        "one_client_bound": bound,
        "maildir_one_client_bound": maildir_bound,
        "note": (
            "With one client every message waits for its own journal append and fdatasync "
            "before its 250 (the Maildir delivery follows it), so the lab's rate is at most "
            "1 / (sink time per message + journal sync time): one_client_bound. Before the "
            "journal (decision 0122) the 250 waited for the Maildir's fdatasync and new/ "
            "fsync: maildir_one_client_bound. Group commit helps concurrent clients. The "
            "machine is shared: rounds alternate lab and sink and the spread of the "
            "per-round ratio is reported."
        ),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "smtp.json").write_text(json.dumps(document, indent=2) + "\n")
    chart(document, RESULTS / "smtp.png")


if __name__ == "__main__":
    main()
