"""``wirelab tour``: bring up the lab, run each chapter's programs against it, report."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from wirelab.cli.common import (
    JsonOption,
    console,
    debug_enabled,
    err_console,
    lab_state,
    print_json,
)
from wirelab.errors import ConfigError
from wirelab.lab.registry import chapters, services
from wirelab.lab.service import LabContext
from wirelab.lab.state import LabState
from wirelab.lab.supervisor import LabThread
from wirelab.lab.tour import Chapter, StepResult, run_chapters

__all__ = ["tour"]


@contextmanager
def _lab(fresh: bool) -> Iterator[LabState]:
    """Use the running lab, or bring up a private one on free ports for the tour's length."""
    running = None if fresh else lab_state()
    if running is not None:
        err_console.print(f"using the running lab (pid {running.pid})")
        yield running
        return
    with tempfile.TemporaryDirectory(prefix="wirelab-tour-") as tmp:
        thread = LabThread(services(), LabContext(state_dir=Path(tmp), ephemeral=True))
        with err_console.status("starting the lab ..."):
            state = thread.start()
        try:
            yield state
        finally:
            thread.stop()


@contextmanager
def _quiet_lab_logs(enabled: bool) -> Iterator[None]:
    """Keep wirelab's log records off stderr: the transcript shows them under their step."""
    if not enabled:
        yield
        return

    def not_ours(record: logging.LogRecord) -> bool:
        return not record.name.startswith("wirelab")

    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(not_ours)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(not_ours)


def _select(numbers: list[int] | None) -> list[Chapter]:
    known = list(chapters())
    if not numbers:
        return known
    chosen = [ch for ch in known if ch.number in numbers]
    missing = sorted(set(numbers) - {ch.number for ch in chosen})
    if missing:
        have = ", ".join(str(ch.number) for ch in known)
        raise ConfigError(f"the tour has no chapter {missing[0]} (chapters: {have})")
    return chosen


def _print_result(result: StepResult, debug: bool) -> None:
    mark = Text("  ok  ", style="bold green") if result.ok else Text(" FAIL ", style="bold red")
    if result.skipped is not None:
        mark = Text(" skip ", style="bold yellow")
    line = Text.assemble(mark, f"{result.step} ", (f"({result.seconds:.2f} s)", "dim"))
    console.print(line)
    for text in result.transcript:
        console.print(Text("        " + text, style="dim"))
    for text in result.logs:
        console.print(Text("        log: " + text, style="yellow"))
    if result.skipped is not None:
        console.print(Text(f"        skipped: {result.skipped}", style="yellow"))
    if result.error:
        console.print(Text(f"        error: {result.error}", style="red"))
        if debug and result.traceback:
            console.print(Text(result.traceback, style="red"))


def _counts(rows: list[StepResult]) -> dict[str, int]:
    """How many steps passed, were skipped (neither passed nor failed) and failed."""
    skipped = sum(r.ok and r.skipped is not None for r in rows)
    failed = sum(not r.ok for r in rows)
    return {
        "steps": len(rows),
        "passed": len(rows) - skipped - failed,
        "skipped": skipped,
        "failed": failed,
    }


def _by_chapter(results: list[StepResult]) -> dict[int, list[StepResult]]:
    by_chapter: dict[int, list[StepResult]] = {}
    for r in results:
        by_chapter.setdefault(r.chapter, []).append(r)
    return by_chapter


def _summary(results: list[StepResult]) -> Table:
    table = Table(title="tour summary", title_justify="left")
    for column in ("chapter", "title", "steps", "passed", "skipped", "failed", "seconds"):
        table.add_column(column, justify="right" if column != "title" else "left")
    for number, rows in _by_chapter(results).items():
        counts = _counts(rows)
        table.add_row(
            str(number),
            rows[0].title,
            str(counts["steps"]),
            str(counts["passed"]),
            Text(str(counts["skipped"]), style="bold yellow" if counts["skipped"] else ""),
            Text(str(counts["failed"]), style="bold red" if counts["failed"] else ""),
            f"{sum(r.seconds for r in rows):.2f}",
        )
    return table


def _verdict(counts: dict[str, int]) -> str:
    """The last line: a skipped step is counted apart, never as passed."""
    if not counts["failed"] and not counts["skipped"]:
        return f"{counts['steps']} steps: [bold green]all steps passed"
    parts = [f"[bold red]{counts['failed']} failed[/]"] if counts["failed"] else []
    parts.append(f"{counts['passed']} passed")
    if counts["skipped"]:
        parts.append(f"[bold yellow]{counts['skipped']} skipped[/]")
    return f"{counts['steps']} steps: " + ", ".join(parts)


def tour(
    chapter: Annotated[
        list[int] | None,
        typer.Option("--chapter", help="Run only this chapter (repeatable)."),
    ] = None,
    json_output: JsonOption = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a private lab even if one is running.")
    ] = False,
    playground: Annotated[
        bool,
        typer.Option("--playground", help="Run the chapter steps across the playground (root)."),
    ] = False,
) -> None:
    """Run every chapter's programs against the lab and print what happened."""
    if playground:  # the playground package owns these steps (wirelab playground tour)
        from wirelab.playground.cli import run_tour

        run_tour(json_output=json_output, chapters=chapter)
        return
    selected = _select(chapter)
    results: list[StepResult] = []
    with _quiet_lab_logs(not debug_enabled()), _lab(fresh) as state:
        current = None
        for result in run_chapters(selected, state):
            if not json_output and result.chapter != current:
                current = result.chapter
                summary = next(ch.summary for ch in selected if ch.number == current)
                console.rule(f"[bold]Chapter {current}: {result.title}", align="left")
                if summary:
                    console.print(Text(summary, style="italic"))
            if not json_output:
                _print_result(result, debug_enabled())
            results.append(result)
    failed = [r for r in results if not r.ok]
    if json_output:
        print_json(
            {
                "ok": not failed,
                # the totals; "steps" below is the list of steps itself
                **{k: v for k, v in _counts(results).items() if k != "steps"},
                "chapters": [
                    {"chapter": number, "title": rows[0].title, **_counts(rows)}
                    for number, rows in _by_chapter(results).items()
                ],
                "steps": [r.to_json() for r in results],
            }
        )
    else:
        console.print()
        console.print(_summary(results))
        console.print(_verdict(_counts(results)))
    if failed:
        raise typer.Exit(1)
