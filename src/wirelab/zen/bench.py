"""The chapter 7 benchmark: every architecture against a C reference server, side by side.

Load comes from a C epoll load generator (``bench/zen/loadgen.c``): a Python one cannot
produce the 150k requests/s a good server answers on two cores. Both C programs are compiled
with ``gcc -O2`` into a cache directory on first use. For each cell (connections x pipeline
depth) every server is run in turn, closed loop: each connection keeps ``pipeline`` questions
outstanding, a warm-up, then a measured window; every answer is checked. Results are
requests/s and p50/p99 latency, with ratios to the C server measured *in the same run*, the
only numbers that mean something on a shared machine. The load generator reports its own CPU
share; near 1.0 it, not the server, was the limit (``loadgen_bound``).

The idle test opens thousands of connections that never send, measures the server's memory
growth (RSS) per connection, then checks that 100 active connections still get answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wirelab.errors import ConfigError, ServiceUnavailable
from wirelab.zen.archs import ARCHS, DEFAULT_ARCH
from wirelab.zen.book import BOOK_ARCHS, BOOK_OF, BOOK_PIPELINES

__all__ = [
    "ASYNC_ARCHS",
    "BenchReport",
    "CellResult",
    "IdleResult",
    "Tools",
    "build_tools",
    "run_bench",
    "write_json",
]

#: The reference server's name in results.
REF = "c-epoll"

#: Architectures that hold thousands of idle connections cheaply (the idle test).
ASYNC_ARCHS = ("selectors", "asyncio-protocol", "asyncio-streams", "uvloop", "prefork")

#: A process per connection: beyond this many connections a cell is skipped, not run.
NOWAIT_MAX_CONNECTIONS = 10

#: The load generator's CPU share above which it, not the server, is the bottleneck.
LOADGEN_BOUND = 0.9

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def bench_sources() -> Path:
    """The directory holding ``ref_server.c`` and ``loadgen.c``.

    Raises:
        ConfigError: the sources are not there (an installed wheel has no ``bench/``).
    """
    explicit = os.environ.get("WIRELAB_BENCH_DIR")
    here = Path(explicit) if explicit else Path(__file__).resolve().parents[3] / "bench" / "zen"
    if not (here / "ref_server.c").is_file():
        raise ConfigError(
            f"benchmark sources not found in {here} (run from a wirelab checkout, "
            "or set WIRELAB_BENCH_DIR)"
        )
    return here


@dataclass(frozen=True)
class Tools:
    """The compiled C reference server and load generator."""

    ref_server: Path
    loadgen: Path


def build_tools(cache: Path | None = None) -> Tools:
    """Compile the C programs with gcc (once per source version) and return their paths.

    Raises:
        ServiceUnavailable: gcc is not installed, or the compilation failed.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise ServiceUnavailable(
            "gcc is missing: the benchmark compiles its C reference server and load "
            "generator (apt-get install gcc)"
        )
    sources = bench_sources()
    base = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wirelab"
    built = {}
    for name in ("ref_server", "loadgen"):
        source = sources / f"{name}.c"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        target = base / "zen-bench" / f"{name}-{digest}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(  # noqa: S603 - the compiler on our own source
                [gcc, "-O2", "-Wall", "-o", str(target), str(source)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise ServiceUnavailable(f"compiling {source.name} failed: {done.stderr.strip()}")
        built[name] = target
    return Tools(built["ref_server"], built["loadgen"])


def raise_nofile() -> tuple[int, int]:
    """Raise this process's soft descriptor limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _rss(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class ServerProcess:
    """One server under test, in its own process."""

    def __init__(self, name: str, tools: Tools) -> None:
        self.name = name
        if name == REF:
            command = [str(tools.ref_server), "0"]
        else:
            command = [sys.executable, "-m", "wirelab.zen", "--arch", name]
        # The servers' own log lines (resets at the end of a run ...) go to a file.
        logs = tools.ref_server.parent / "logs"
        logs.mkdir(exist_ok=True)
        with (logs / f"{name}.log").open("ab") as log_file:
            self.proc = subprocess.Popen(  # noqa: S603 - our own programs
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) < 2 or line[0] != "PORT":
            self.stop()
            raise ServiceUnavailable(f"the {name} server did not start")
        self.port = int(line[1])
        self.pids = [int(p) for p in line[3].split(",")] if len(line) > 3 else [self.proc.pid]

    def rss(self) -> int:
        """Resident memory of the serving processes, in bytes."""
        return _rss(self.pids)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class CellResult:
    """One server at one (connections, pipeline) point."""

    server: str
    connections: int
    pipeline: int
    rps: float = 0.0
    p50_us: float = 0.0
    p99_us: float = 0.0
    errors: int = 0
    connected: int = 0
    starved: int = 0
    loadgen_cpu: float = 0.0
    ratio: float | None = None
    p99_ratio: float | None = None
    paired_ref_rps: float | None = None
    note: str = ""

    @property
    def loadgen_bound(self) -> bool:
        """The load generator used most of a CPU: the server may be faster than shown."""
        return self.loadgen_cpu >= LOADGEN_BOUND


@dataclass
class IdleResult:
    """The idle-connections test for one server."""

    server: str
    idle_asked: int
    idle_open: int
    rss_before: int
    rss_idle: int
    bytes_per_connection: float
    rps: float
    p99_us: float
    errors: int
    note: str = ""


@dataclass
class BenchReport:
    """Everything one run measured."""

    cells: list[CellResult] = field(default_factory=list)
    idle: list[IdleResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / results-file form."""
        cells = []
        for cell in self.cells:
            item = asdict(cell)
            item["loadgen_bound"] = cell.loadgen_bound
            cells.append(item)
        return {
            "settings": self.settings,
            "cells": cells,
            "idle": [asdict(i) for i in self.idle],
            "book_comparison": self.book_comparison(),
        }

    def result(self, server: str, connections: int, pipeline: int) -> CellResult | None:
        """The result of ``server`` at one cell, if it ran."""
        for cell in self.cells:
            if (cell.server, cell.connections, cell.pipeline) == (server, connections, pipeline):
                return cell
        return None

    def book_comparison(self) -> list[dict[str, Any]]:
        """Ours over the book's design, per architecture and connection count (pipeline 1).

        ``ratio`` divides the two paired ratios to the C server (each measured right after
        its own C run), which cancels the machine's drift between the two measurements.
        """
        rows = []
        for ours, book in BOOK_OF.items():
            for cell in self.cells:
                if cell.server != ours or cell.pipeline != 1:
                    continue
                theirs = self.result(book, cell.connections, 1)
                if theirs is None or not theirs.rps:
                    continue
                rows.append(
                    {
                        "arch": ours,
                        "book": book,
                        "connections": cell.connections,
                        "ours_rps": round(cell.rps),
                        "book_rps": round(theirs.rps),
                        "ratio": round(
                            cell.ratio / theirs.ratio
                            if cell.ratio and theirs.ratio
                            else cell.rps / theirs.rps,
                            3,
                        ),
                    }
                )
        return rows


def _loadgen(
    tools: Tools,
    port: int,
    connections: int,
    pipeline: int,
    warmup: float,
    seconds: float,
    idle: int = 0,
    on_idle: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    command = [str(tools.loadgen), "127.0.0.1", str(port), str(connections), str(pipeline)]
    command += [f"{warmup:g}", f"{seconds:g}", str(idle)]
    proc = subprocess.Popen(  # noqa: S603 - our own program
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if idle:
            words = proc.stdout.readline().split()
            if len(words) == 3 and on_idle is not None:
                on_idle(int(words[1]), int(words[2]))
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, _ = proc.communicate(timeout=warmup + seconds + 30.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": "the load generator did not finish in time"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"the load generator failed (exit {proc.returncode})"}
    return result


def _cell_from(name: str, connections: int, pipeline: int, raw: dict[str, Any]) -> CellResult:
    if "error" in raw:
        return CellResult(name, connections, pipeline, note=str(raw["error"]))
    cell = CellResult(
        name,
        connections,
        pipeline,
        rps=float(raw["rps"]),
        p50_us=float(raw["p50_us"]),
        p99_us=float(raw["p99_us"]),
        errors=int(raw["errors"]),
        connected=int(raw["connected"]),
        starved=int(raw["starved"]),
        loadgen_cpu=float(raw["cpu_share"]),
    )
    notes = []
    if cell.starved:
        notes.append(f"{cell.starved} of {connections} connections got no answer")
    if cell.errors:
        notes.append(f"{cell.errors} wrong answers")
    if cell.loadgen_bound:
        notes.append("load generator bound")
    cell.note = "; ".join(notes)
    return cell


def _servers_for(name: str, connections: int, pipeline: int) -> str | None:
    """Why ``name`` is not run at this cell, or ``None`` if it is."""
    if name in BOOK_ARCHS and name not in BOOK_PIPELINES and pipeline > 1:
        return "the book's framing cannot answer pipelined questions"
    if name == "inetd-nowait" and connections > NOWAIT_MAX_CONNECTIONS:
        return f"a process per connection: not run above {NOWAIT_MAX_CONNECTIONS} connections"
    return None


def run_bench(
    archs: Sequence[str] | None = None,
    *,
    connections: Sequence[int] = (1, 10, 100, 1000),
    pipelines: Sequence[int] = (1, 16),
    seconds: float = 2.0,
    warmup: float = 0.5,
    rounds: int = 1,
    book: bool = True,
    idle: int = 10_000,
    idle_archs: Sequence[str] | None = None,
    tools: Tools | None = None,
    progress: Progress = _noop,
) -> BenchReport:
    """Run the benchmark and return every measurement (see the module docstring).

    Args:
        archs: our architectures to measure (default: all).
        connections: connection counts, one cell each.
        pipelines: questions kept outstanding per connection, one cell each.
        seconds: the measured window of each run.
        warmup: seconds of load before each window.
        rounds: runs per server and cell; the best one is kept (less noise from neighbours).
        book: also run the book's designs (pipeline 1 only).
        idle: idle connections for the idle test (0: skip it).
        idle_archs: architectures in the idle test (default: the async ones asked for).
        tools: the compiled C programs (default: build them).
        progress: called with a line of text before each run.

    Raises:
        ConfigError: an unknown architecture.
        ServiceUnavailable: gcc is missing, or a server did not start.
    """
    chosen = list(archs or ARCHS)
    unknown = [a for a in chosen if a not in ARCHS]
    if unknown:
        raise ConfigError(f"unknown architecture {', '.join(unknown)} (known: {', '.join(ARCHS)})")
    tools = tools or build_tools()
    soft, _ = raise_nofile()
    names = [REF, *chosen]
    if book:
        names += [BOOK_OF[a] for a in chosen if a in BOOK_OF]
    report = BenchReport(
        settings={
            "connections": list(connections),
            "pipelines": list(pipelines),
            "seconds": seconds,
            "warmup": warmup,
            "rounds": rounds,
            "default_arch": DEFAULT_ARCH,
            "cpus": os.cpu_count(),
            "nofile": soft,
            "loadgen": "C, epoll, one thread",
            "reference": "C, epoll, one thread",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    servers: dict[str, ServerProcess] = {}
    try:
        for name in names:
            progress(f"starting {name}")
            servers[name] = ServerProcess(name, tools)
        for pipeline in pipelines:
            for count in connections:
                report.cells += _run_cell(
                    names, servers, tools, count, pipeline, rounds, warmup, seconds, progress
                )
        if idle:
            wanted = (
                idle_archs if idle_archs is not None else [a for a in chosen if a in ASYNC_ARCHS]
            )
            for name in [REF, *wanted]:
                progress(f"{name}: {idle} idle connections + 100 active")
                report.idle.append(_idle_test(tools, servers[name], idle, warmup, seconds))
    finally:
        for server in servers.values():
            server.stop()
    return report


def _run_cell(
    names: Sequence[str],
    servers: dict[str, ServerProcess],
    tools: Tools,
    count: int,
    pipeline: int,
    rounds: int,
    warmup: float,
    seconds: float,
    progress: Progress,
) -> list[CellResult]:
    """Run every server at one cell, each run paired with a run of the reference just before.

    The ratio within a pair is robust to the slow drift of a shared machine; with several
    rounds, the median pair is kept.
    """
    runs: dict[str, list[tuple[CellResult, CellResult]]] = {name: [] for name in names}
    skipped: dict[str, str] = {}
    refs: list[CellResult] = []

    def measure(name: str) -> CellResult:
        progress(f"{name}: {count} connections, pipeline {pipeline}")
        raw = _loadgen(tools, servers[name].port, count, pipeline, warmup, seconds)
        return _cell_from(name, count, pipeline, raw)

    for _ in range(max(1, rounds)):
        for name in names:
            if name == REF:
                continue
            why = _servers_for(name, count, pipeline)
            if why is not None:
                skipped[name] = why
                continue
            ref = measure(REF)
            refs.append(ref)
            runs[name].append((measure(name), ref))
    refs.sort(key=lambda c: c.rps)
    reference = refs[len(refs) // 2] if refs else CellResult(REF, count, pipeline)
    reference.ratio, reference.p99_ratio = 1.0, 1.0
    cells = [reference]
    for name in names:
        if name == REF:
            continue
        if name in skipped:
            cells.append(CellResult(name, count, pipeline, note=skipped[name]))
            continue
        pairs = [(cell, ref) for cell, ref in runs[name] if cell.rps and ref.rps]
        if not pairs:
            cells.append(runs[name][0][0])
            continue
        pairs.sort(key=lambda pair: pair[0].rps / pair[1].rps)
        cell, ref = pairs[(len(pairs) - 1) // 2]  # the median pair (the lower of two)
        cell.ratio = round(cell.rps / ref.rps, 3)
        cell.p99_ratio = round(cell.p99_us / ref.p99_us, 2) if ref.p99_us else None
        cell.paired_ref_rps = ref.rps
        cells.append(cell)
    return cells


def _idle_test(
    tools: Tools, server: ServerProcess, idle: int, warmup: float, seconds: float
) -> IdleResult:
    before = server.rss()
    seen: dict[str, int] = {}

    def on_idle(opened: int, failed: int) -> None:
        time.sleep(0.5)  # let the server accept the last ones
        seen.update(opened=opened, failed=failed, rss=server.rss())

    raw = _loadgen(tools, server.port, 100, 1, warmup, seconds, idle=idle, on_idle=on_idle)
    opened = seen.get("opened", 0)
    grown = seen.get("rss", before) - before
    note = ""
    if opened < idle:
        note = f"only {opened} of {idle} idle connections could be opened"
    if "error" in raw:
        note = str(raw["error"])
    return IdleResult(
        server=server.name,
        idle_asked=idle,
        idle_open=opened,
        rss_before=before,
        rss_idle=seen.get("rss", before),
        bytes_per_connection=round(grown / opened, 1) if opened else 0.0,
        rps=float(raw.get("rps", 0.0)),
        p99_us=float(raw.get("p99_us", 0.0)),
        errors=int(raw.get("errors", 0)),
        note=note,
    )


def write_json(report: BenchReport, path: Path) -> None:
    """Write the report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
