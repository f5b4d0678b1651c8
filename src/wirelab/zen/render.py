"""Render a benchmark report: rich tables for the terminal, Markdown for the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from wirelab.zen.archs import DEFAULT_ARCH
from wirelab.zen.bench import REF, BenchReport, CellResult

__all__ = ["bench_tables", "goals", "markdown", "write_chart"]


def _cell_text(cell: CellResult | None) -> str:
    if cell is None:
        return "-"
    if not cell.rps:
        return "skipped" if cell.note else "-"
    text = f"{cell.rps / 1000:.1f}k"
    if cell.ratio is not None and cell.server != REF:
        text += f" ({cell.ratio:.2f})"
    text += f" p99 {cell.p99_us / 1000:.1f}ms"
    if cell.starved:
        text += f" [{cell.starved} starved]"
    if cell.errors:
        text += f" [{cell.errors} wrong]"
    if cell.loadgen_bound:
        text += " *"
    return text


def _servers(report: BenchReport, pipeline: int) -> list[str]:
    return list(dict.fromkeys(c.server for c in report.cells if c.pipeline == pipeline))


def goals(report: BenchReport, arch: str = DEFAULT_ARCH) -> list[dict[str, Any]]:
    """The issue's goals for the fastest architecture, each with the measured ratio."""
    rows = []
    for connections, pipeline, target in ((100, 1, 0.9), (100, 16, 0.7), (1000, 1, 0.8)):
        cell = report.result(arch, connections, pipeline)
        if cell is None or cell.ratio is None:
            continue
        rows.append(
            {
                "goal": f"{arch} at {connections} connections, pipeline {pipeline}",
                "target": target,
                "ratio": cell.ratio,
                "p99_ratio": cell.p99_ratio,
                "met": cell.ratio >= target and (cell.p99_ratio or 0) <= 2.0,
            }
        )
    return rows


def bench_tables(report: BenchReport) -> list[Table]:
    """One table per pipeline depth, then the book comparison, idle test and goals."""
    tables = []
    for pipeline in sorted({c.pipeline for c in report.cells}):
        counts = sorted({c.connections for c in report.cells if c.pipeline == pipeline})
        table = Table(
            title=f"Zen requests/s (ratio to {REF}), pipeline {pipeline}; * load generator bound"
        )
        table.add_column("server")
        for count in counts:
            table.add_column(f"{count} conn", justify="right")
        for server in _servers(report, pipeline):
            table.add_row(server, *(_cell_text(report.result(server, n, pipeline)) for n in counts))
        tables.append(table)
    rows = report.book_comparison()
    if rows:
        table = Table(title="ours / the book's design (pipeline 1)")
        for column in ("arch", "book", "connections", "ours_rps", "book_rps", "ratio"):
            table.add_column(column, justify="right" if column != "arch" else "left")
        for row in rows:
            table.add_row(*(str(row[k]) for k in row))
        tables.append(table)
    if report.idle:
        table = Table(title="idle connections held while 100 active ones are served")
        for column in ("server", "idle open", "bytes/idle conn", "active req/s", "p99", "note"):
            table.add_column(column)
        for idle in report.idle:
            table.add_row(
                idle.server,
                f"{idle.idle_open}/{idle.idle_asked}",
                f"{idle.bytes_per_connection:.0f}",
                f"{idle.rps / 1000:.1f}k",
                f"{idle.p99_us / 1000:.1f}ms",
                idle.note,
            )
        tables.append(table)
    found = goals(report)
    if found:
        table = Table(title="goals (ratio to the C server, same run)")
        for column in ("goal", "target", "ratio", "p99 ratio", "met"):
            table.add_column(column)
        for row in found:
            table.add_row(*(str(v) for v in row.values()))
        tables.append(table)
    return tables


def markdown(report: BenchReport) -> str:
    """The report as Markdown tables (for the chapter page)."""
    lines: list[str] = []
    for pipeline in sorted({c.pipeline for c in report.cells}):
        counts = sorted({c.connections for c in report.cells if c.pipeline == pipeline})
        lines += [
            f"Pipeline depth {pipeline}: requests/s (ratio to the C server) and p99 latency",
            "",
            "| server | " + " | ".join(f"{n} conn" for n in counts) + " |",
            "|---|" + "---:|" * len(counts),
        ]
        for server in _servers(report, pipeline):
            cells = [_cell_text(report.result(server, n, pipeline)) for n in counts]
            if all(text in ("skipped", "-") for text in cells):
                continue
            lines.append(f"| {server} | " + " | ".join(cells) + " |")
        lines.append("")
    rows = report.book_comparison()
    if rows:
        lines += ["| ours | book's design | connections | ours / book |", "|---|---|---:|---:|"]
        lines += [
            f"| {r['arch']} | {r['book']} | {r['connections']} | {r['ratio']:.2f} |" for r in rows
        ]
        lines.append("")
    if report.idle:
        lines += [
            "| server | idle connections open | memory per idle connection | active req/s |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {i.server} | {i.idle_open}/{i.idle_asked} | {i.bytes_per_connection / 1024:.1f} "
            f"KiB | {i.rps / 1000:.1f}k |"
            for i in report.idle
        ]
        lines.append("")
    return "\n".join(lines)


def write_chart(report: BenchReport, path: Path) -> None:
    """Draw requests/s relative to the C server, one panel per pipeline depth (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pipelines = sorted({c.pipeline for c in report.cells})
    fig, axes = plt.subplots(1, len(pipelines), figsize=(7 * len(pipelines), 5), squeeze=False)
    for ax, pipeline in zip(axes[0], pipelines, strict=True):
        cells = [c for c in report.cells if c.pipeline == pipeline and c.server != REF]
        counts = sorted({c.connections for c in cells})
        servers = list(dict.fromkeys(c.server for c in cells if c.rps))
        width = 0.8 / max(1, len(servers))
        for i, server in enumerate(servers):
            values = [
                (report.result(server, n, pipeline) or CellResult(server, n, pipeline)).ratio or 0
                for n in counts
            ]
            xs = [j + i * width for j in range(len(counts))]
            hatch = "//" if server.startswith("book-") else None
            ax.bar(xs, values, width, label=server, hatch=hatch)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(counts))], [str(n) for n in counts])
        ax.set_xlabel("connections")
        ax.set_ylabel("requests/s relative to the C epoll server (same run)")
        ax.set_title(f"Zen, pipeline depth {pipeline}")
        # Below the bars, not over them.
        ax.legend(fontsize="x-small", ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
