"""A longer hostile soak: the suite's generic probes, round after round, against a fresh lab.

``tests/hostile/`` runs each probe once, in CI, under 3 minutes. This runs them for
``--rounds`` rounds (or until ``--seconds`` pass) against a private lab on loopback, and
records for every (probe, endpoint) how often the normal client was served, its slowest
time, and the lab's resident memory after each round, so a slow leak or a rare stall shows::

    .venv/bin/python bench/hostile_soak.py --rounds 5 --seconds 600

Writes ``bench/results/hostile_soak.json``. Run by hand: it is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.hostile

from tests.hostile.conftest import lab_rss, served
from tests.hostile.probes import PROBES, TLS_PROBES

from wirelab.lab.registry import services
from wirelab.lab.service import BoundEndpoint, LabContext
from wirelab.lab.state import LabState, state_path
from wirelab.lab.supervisor import LabThread

RESULTS = Path(__file__).parent / "results" / "hostile_soak.json"

_TCP_ONLY = {"half_open", "reset", "slowloris"}


def _applies(probe: str, ep: BoundEndpoint) -> bool:
    if probe in TLS_PROBES:
        return ep.tls
    return ep.protocol == "tcp" or probe not in _TCP_ONLY


def soak(state: LabState, rounds: int, seconds: float) -> dict[str, object]:
    """Run every probe against every endpoint, ``rounds`` times or until ``seconds`` pass."""
    every = {**PROBES, **TLS_PROBES}
    table: dict[str, dict[str, object]] = {}
    memory = [lab_rss(state)]
    stop = time.monotonic() + seconds
    done = 0
    for _ in range(rounds):
        if time.monotonic() > stop:
            break
        for name, probe in every.items():
            for ep in state.endpoints:
                if not _applies(name, ep):
                    continue
                row = table.setdefault(
                    f"{name} {ep.name}", {"runs": 0, "failures": 0, "slowest": 0.0, "last": ""}
                )
                times: list[float] = []

                def during(what: str, ep: BoundEndpoint = ep, times: list[float] = times) -> None:
                    times.append(served(state, ep, what))

                row["runs"] = int(row["runs"]) + 1  # type: ignore[call-overload]
                try:
                    probe(state, ep, during)
                    times.append(served(state, ep, f"after {name}"))
                except (AssertionError, OSError) as exc:
                    row["failures"] = int(row["failures"]) + 1  # type: ignore[call-overload]
                    row["last"] = str(exc)[:300]
                if times:
                    row["slowest"] = round(max(float(row["slowest"]), *times), 3)  # type: ignore[arg-type]
        done += 1
        memory.append(lab_rss(state))
        print(f"round {done}: lab {memory[-1] / 2**20:.0f} MiB", file=sys.stderr)
    return {
        "rounds": done,
        "lab_rss_mib": [round(m / 2**20, 1) for m in memory],
        "probes": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="wirelab-soak-") as tmp:
        directory = Path(tmp)
        thread = LabThread(
            services(),
            LabContext(state_dir=directory, ephemeral=True),
            state_file=state_path(directory),
        )
        state = thread.start()
        started = time.monotonic()
        try:
            result = soak(state, args.rounds, args.seconds)
        finally:
            thread.stop()
    result.update(
        {
            "seconds": round(time.monotonic() - started, 1),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    probes: dict[str, dict[str, object]] = result["probes"]  # type: ignore[assignment]
    failed = {k: v for k, v in probes.items() if v["failures"]}
    print(f"{result['rounds']} rounds, {len(failed)} (probe, endpoint) pairs failed at least once")
    for key, row in failed.items():
        print(f"  {key}: {row['failures']}/{row['runs']}: {row['last']}")


if __name__ == "__main__":
    main()
