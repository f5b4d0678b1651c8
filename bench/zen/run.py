"""Run the full chapter 7 benchmark and write bench/results/zen.{json,png,md}.

    .venv/bin/python bench/zen/run.py [--seconds 2] [--rounds 2] [--idle 10000]

The same as ``wirelab zen bench --out ... --chart ...``, with the settings used for the
table in docs/chapters/07-zen.md. It takes about ten minutes on two cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from wirelab.zen import bench
from wirelab.zen.render import bench_tables, goals, markdown, write_chart

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--connections", default="1,10,100,1000")
    parser.add_argument("--pipelines", default="1,16")
    args = parser.parse_args()
    err = Console(stderr=True)
    report = bench.run_bench(
        connections=[int(n) for n in args.connections.split(",")],
        pipelines=[int(n) for n in args.pipelines.split(",")],
        seconds=args.seconds,
        warmup=args.warmup,
        rounds=args.rounds,
        idle=args.idle,
        progress=lambda text: err.print(text, highlight=False),
    )
    bench.write_json(report, RESULTS / "zen.json")
    write_chart(report, RESULTS / "zen.png")
    (RESULTS / "zen.md").write_text(markdown(report), encoding="utf-8")
    out = Console(width=160)
    for table in bench_tables(report):
        out.print(table)
    for row in goals(report):
        print(row, file=sys.stderr)


if __name__ == "__main__":
    main()
