"""Benchmark for chapters 14-15: messages/s fetched over POP3 and IMAP, ours beside Dovecot.

Issue 15's goal: at least 0.5 of Dovecot's rate on POP3 ``RETR`` and on IMAP ``FETCH``, for
1 KiB and 1 MiB messages, 1000 of them, side by side in one run, Dovecot serving the same
Maildir. So:

* **one Maildir**: our store's ``bench`` Maildir *is* Dovecot's (a symlink to the Maildir the
  Dovecot peer of ``tests/interop/mail_peers.py`` serves; root needed, as in those tests).
  Messages go in through :meth:`MailStore.deliver` (what our SMTP server does) and are
  handed to Dovecot's user; both servers read the very same files;
* **ours** (the POP3 server and the IMAP server on pymap) run in a child process, as Dovecot
  runs in its own, so the client does not share an interpreter with our servers;
* **the client** is the standard library's, one message at a time over implicit TLS:
  ``poplib`` ``RETR n`` and ``imaplib`` ``UID FETCH uid (BODY.PEEK[])`` after an
  ``EXAMINE``; the clock runs from the first fetch to the last, login excluded;
* **rounds**: each cell is measured ``MAIL_BENCH_ROUNDS`` times (default 5), ours and
  Dovecot alternating which goes first; the JSON keeps every rate, the summary is the median
  and our share of Dovecot is the median of the per-round shares, with its range;
* **server CPU per message**: around each fetch loop (login excluded) the bench reads the
  CPU time of our server process and of Dovecot's whole process tree (``/proc``, 10 ms
  ticks). On a machine shared with other work the wall-clock rate of a server follows how
  much CPU it needs per request, so the ratio of the two (``*_cpu_share``: Dovecot's CPU
  per message over ours) is the steadier figure; both are reported.

Cells: ``MAIL_BENCH_COUNT`` (default 1000) messages of 1 KiB, every one fetched each round;
``MAIL_BENCH_LARGE`` (default 1000) messages of 1 MiB in the Maildir, of which
``MAIL_BENCH_SAMPLE`` (default 15, spread evenly over the folder) are fetched each round:
fetching all 1000 MiB in each of 20 measurements would take many minutes (the stdlib's POP3
client reads a MiB line by line, at 5-15 messages/s with either server). Writes
``bench/results/mail.json`` and ``bench/results/mail.png``::

    .venv/bin/python bench/mail_bench.py

About 90 s on two shared cores: delivering the gigabyte of 1 MiB messages (each fsync'd, as
our SMTP server stores them) is a quarter of it; ``MAIL_BENCH_LARGE=200`` shortens the run.
"""

from __future__ import annotations

import imaplib
import json
import multiprocessing
import os
import platform
import poplib
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tests.interop.mail_peers import dovecot_server  # noqa: E402

from wirelab.mail.store import MailStore  # noqa: E402
from wirelab.net.ca import LabCA  # noqa: E402
from wirelab.net.tlsctx import client_context  # noqa: E402

COUNT = int(os.environ.get("MAIL_BENCH_COUNT", "1000"))
LARGE = int(os.environ.get("MAIL_BENCH_LARGE", "1000"))
SAMPLE = int(os.environ.get("MAIL_BENCH_SAMPLE", "15"))
ROUNDS = int(os.environ.get("MAIL_BENCH_ROUNDS", "5"))
USER, PASSWORD = "bench", "bench-pass"
DOVECOT_UID = 65534  # the user the Dovecot peer's mail processes run as
RESULTS = ROOT / "bench" / "results"


def _message(n: int, size: int) -> bytes:
    head = f"From: bench@example.com\r\nSubject: bench {n}\r\n\r\n".encode()
    line = b"x" * 78 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def _serve(root: str, cert: str, key: str, conn: Connection) -> None:
    """The child process: our POP3S and IMAPS servers over ``root`` until told to stop."""
    from wirelab.imap.server import IMAPSettings, open_imap_server
    from wirelab.net.server import ServerThread
    from wirelab.net.tlsctx import server_context
    from wirelab.pop.server import POP3Settings, open_pop3_server

    store = MailStore(Path(root))
    pop = POP3Settings(store, tls_context=server_context(Path(cert), Path(key)), implicit_tls=True)
    imap = IMAPSettings(store, tls_context=server_context(Path(cert), Path(key)), implicit_tls=True)
    with (
        ServerThread(lambda: open_pop3_server("127.0.0.1", 0, pop)) as p3,
        ServerThread(lambda: open_imap_server("127.0.0.1", 0, imap)) as i4,
    ):
        conn.send((p3.address[1], i4.address[1], os.getpid()))
        conn.recv()


def _pop_rate(port: int, pid: int, context: Any, numbers: list[int]) -> tuple[float, float]:
    """(messages/s, server CPU ms per message) of ``RETR`` of ``numbers``, login excluded."""
    client = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=120)
    try:
        client.user(USER)
        client.pass_(PASSWORD)
        cpu = _tree_cpu(pid)
        start = time.perf_counter()
        for n in numbers:
            client.retr(n)
        elapsed = time.perf_counter() - start
        cpu = _tree_cpu(pid) - cpu
    finally:
        client.quit()
    return len(numbers) / elapsed, cpu * 1000 / len(numbers)


def _imap_rate(port: int, pid: int, context: Any, picks: list[int]) -> tuple[float, float]:
    """(messages/s, server CPU ms per message) of ``UID FETCH`` of ``picks``, login and
    ``EXAMINE`` excluded."""
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=120)
    try:
        client.login(USER, PASSWORD)
        client.select("INBOX", readonly=True)
        _, data = client.uid("SEARCH", "ALL")
        uids = data[0].split()
        chosen = [uids[n - 1] for n in picks]
        cpu = _tree_cpu(pid)
        start = time.perf_counter()
        for uid in chosen:
            _, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            if not isinstance(fetched[0], tuple):
                raise RuntimeError(f"no body for UID {uid!r}: {fetched!r}")
        elapsed = time.perf_counter() - start
        cpu = _tree_cpu(pid) - cpu
    finally:
        client.logout()
    return len(chosen) / elapsed, cpu * 1000 / len(chosen)


def _tree_cpu(root: int) -> float:
    """CPU seconds used by process ``root`` and its descendants, exited ones included.

    From ``/proc``: each process's own user+system time plus what it collected from the
    children it reaped (Dovecot's per-connection imap, pop3 and login processes exit at
    logout; their time then shows in the master's ``cutime``).
    """
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        table[int(name)] = (ppid, utime + stime + cutime + cstime)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
            todo += [child for child, (ppid, _) in table.items() if ppid == pid]
    return total / tick


def _dovecot_pid(dovecot: Any) -> int:
    """The Dovecot master of this run: the one started with this run's configuration."""
    config = str(dovecot.mail.parent / "dovecot.conf").encode()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if config in Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0"):
                    return int(name)
            except OSError:
                continue
    raise RuntimeError("the Dovecot master process was not found")


def _give_to_dovecot(maildir: Path) -> None:
    """Dovecot's mail processes run as nobody: hand them every file (ours are root's)."""
    for path in [maildir, *maildir.rglob("*")]:
        os.lchown(path, DOVECOT_UID, DOVECOT_UID)


def _empty(maildir: Path) -> None:
    """No message and no server's metadata left: each cell starts from a bare Maildir."""
    for entry in maildir.iterdir():
        if entry.is_dir() and entry.name in ("new", "cur", "tmp"):
            for path in entry.iterdir():
                path.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _cell(
    store: MailStore,
    maildir: Path,
    dovecot: Any,
    ours: tuple[int, int, int],
    context: Any,
    size: int,
    stored: int,
    fetched: int,
) -> dict[str, Any]:
    _empty(maildir)
    start = time.perf_counter()
    for n in range(stored):
        store.deliver(USER, _message(n, size))
    delivery = time.perf_counter() - start
    _give_to_dovecot(maildir)
    step = max(1, stored // fetched)
    picks = list(range(1, stored + 1, step))[:fetched]
    servers = {"lab": ours[:2], "dovecot": (dovecot.pop3s, dovecot.imaps)}
    pids = {"lab": ours[2], "dovecot": _dovecot_pid(dovecot)}
    runs = {"pop3": _pop_rate, "imap": _imap_rate}
    rates: dict[str, list[float]] = {f"{p}_{s}": [] for p in runs for s in servers}
    cpu: dict[str, list[float]] = {key: [] for key in rates}
    # Dovecot's IMAP goes first once, unmeasured: it builds its index, and its uid list is
    # then the one both servers read
    _imap_rate(dovecot.imaps, pids["dovecot"], context, picks)
    for round_ in range(ROUNDS):
        order = ["lab", "dovecot"] if round_ % 2 == 0 else ["dovecot", "lab"]
        for proto, run in runs.items():
            for name in order:
                port = servers[name][0 if proto == "pop3" else 1]
                rate, used = run(port, pids[name], context, picks)
                rates[f"{proto}_{name}"].append(rate)
                cpu[f"{proto}_{name}"].append(used)
        _give_to_dovecot(maildir)  # anything our server wrote (its uid list) stays readable
    cell: dict[str, Any] = {
        "size": size,
        "messages_in_maildir": stored,
        "messages_fetched_per_round": len(picks),
        "rounds": ROUNDS,
        "delivery_seconds": round(delivery, 2),
        "rates": {key: [round(v, 1) for v in values] for key, values in rates.items()},
        "server_cpu_ms_per_message": {
            key: [round(v, 3) for v in values] for key, values in cpu.items()
        },
    }
    for proto in ("pop3", "imap"):
        ours_rates, theirs = rates[f"{proto}_lab"], rates[f"{proto}_dovecot"]
        shares = [a / b for a, b in zip(ours_rates, theirs, strict=True)]
        cell[f"{proto}_lab"] = round(statistics.median(ours_rates), 1)
        cell[f"{proto}_dovecot"] = round(statistics.median(theirs), 1)
        cell[f"{proto}_share"] = round(statistics.median(shares), 2)
        cell[f"{proto}_share_range"] = [round(min(shares), 2), round(max(shares), 2)]
        ours_cpu, theirs_cpu = cpu[f"{proto}_lab"], cpu[f"{proto}_dovecot"]
        cell[f"{proto}_cpu_ms_lab"] = round(statistics.median(ours_cpu), 3)
        cell[f"{proto}_cpu_ms_dovecot"] = round(statistics.median(theirs_cpu), 3)
        # Dovecot's CPU per message over ours: our efficiency as a share of Dovecot's, the
        # figure the wall-clock share tends to on a busy machine, measured directly
        cell[f"{proto}_cpu_share"] = round(
            statistics.median(theirs_cpu) / statistics.median(ours_cpu), 2
        )
    return cell


def chart(cells: list[dict[str, Any]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(cells), figsize=(5 * len(cells), 4.5), squeeze=False)
    for ax, cell in zip(axes[0], cells, strict=True):
        labels = ["POP3 RETR", "IMAP FETCH"]
        for i, (server, name) in enumerate((("lab", "wirelab"), ("dovecot", "Dovecot"))):
            values = [cell[f"{p}_{server}"] for p in ("pop3", "imap")]
            spread = [cell["rates"][f"{p}_{server}"] for p in ("pop3", "imap")]
            low = [v - min(s) for v, s in zip(values, spread, strict=True)]
            high = [max(s) - v for v, s in zip(values, spread, strict=True)]
            xs = [x + i * 0.4 for x in range(len(labels))]
            ax.bar(xs, values, width=0.4, label=name, yerr=[low, high], capsize=4)
        for x, proto in enumerate(("pop3", "imap")):
            ax.annotate(
                f"{cell[f'{proto}_share']:.2f}x",
                (x + 0.2, max(cell[f"{proto}_lab"], cell[f"{proto}_dovecot"])),
                ha="center",
                va="bottom",
            )
        ax.set_xticks([x + 0.2 for x in range(len(labels))], labels)
        size = "1 KiB" if cell["size"] < 1 << 20 else "1 MiB"
        ax.set_title(
            f"{size}: {cell['messages_fetched_per_round']} of {cell['messages_in_maildir']}"
            f" fetched, median of {cell['rounds']}"
        )
        ax.set_ylabel("messages per second")
        ax.legend()
    fig.suptitle("wirelab vs Dovecot on the same Maildir (share = ours / Dovecot)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wirelab-mail-bench-"))
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "client": "stdlib poplib RETR / imaplib UID FETCH (BODY.PEEK[]), one at a time, TLS",
        "cells": [],
    }
    spawn = multiprocessing.get_context("spawn")
    try:
        ca = LabCA.load_or_create(work / "ca")
        cert, key = ca.server_cert_for(["mail.example.com", "localhost"], work / "ca")
        context = client_context(cafile=ca.cert_path)
        with dovecot_server(work / "dovecot", cert, key, {USER: PASSWORD}) as dovecot:
            store = MailStore(work / "lab")
            store.add_account(USER, PASSWORD)
            ours_dir = store.root / "users" / USER / "Maildir"
            shutil.rmtree(ours_dir, ignore_errors=True)
            ours_dir.symlink_to(dovecot.maildir(USER), target_is_directory=True)
            parent, child = spawn.Pipe()
            server = spawn.Process(
                target=_serve, args=(str(store.root), str(cert), str(key), child)
            )
            server.start()
            try:
                if not parent.poll(60):
                    raise RuntimeError("our servers did not start within 60 s")
                ours = parent.recv()
                for size, stored, fetched in ((1024, COUNT, COUNT), (1 << 20, LARGE, SAMPLE)):
                    cell = _cell(store, ours_dir, dovecot, ours, context, size, stored, fetched)
                    results["cells"].append(cell)
                    print(
                        f"{size:>8} B, {cell['messages_fetched_per_round']} of {stored}: "
                        f"POP3 RETR {cell['pop3_lab']:.0f}/s vs Dovecot "
                        f"{cell['pop3_dovecot']:.0f}/s ({cell['pop3_share']:.2f}, "
                        f"{cell['pop3_share_range']}); IMAP FETCH {cell['imap_lab']:.0f}/s vs "
                        f"{cell['imap_dovecot']:.0f}/s ({cell['imap_share']:.2f}, "
                        f"{cell['imap_share_range']}); server CPU ms/message POP3 "
                        f"{cell['pop3_cpu_ms_lab']} vs {cell['pop3_cpu_ms_dovecot']} "
                        f"({cell['pop3_cpu_share']}), IMAP {cell['imap_cpu_ms_lab']} vs "
                        f"{cell['imap_cpu_ms_dovecot']} ({cell['imap_cpu_share']})",
                        flush=True,
                    )
                    _empty(ours_dir)
            finally:
                parent.send("stop")
                server.join(30)
                if server.is_alive():
                    server.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out = RESULTS / "mail.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    chart(results["cells"], RESULTS / "mail.png")
    print(f"wrote {out} and mail.png")


if __name__ == "__main__":
    main()
