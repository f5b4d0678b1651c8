"""``wirelab tour`` counts a skipped step apart, neither passed nor failed (table, --json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wirelab.cli import tour as tour_cli
from wirelab.config import Account
from wirelab.lab.state import LabState
from wirelab.lab.tour import Chapter, TourContext


def _chapter() -> Chapter:
    chapter = Chapter(97, "Skips", "a chapter for the summary's tests")

    @chapter.step("passes")
    def _ok(ctx: TourContext) -> None:
        ctx.say("fine")

    @chapter.step("cannot run here")
    def _skip(ctx: TourContext) -> None:
        ctx.skip("no browser on this machine")

    @chapter.step("also passes")
    def _ok2(ctx: TourContext) -> None:
        ctx.say("fine too")

    return chapter


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    chapter = _chapter()

    @contextmanager
    def empty_lab(fresh: bool) -> Iterator[LabState]:
        yield LabState((), str(tmp_path / "ca.pem"), (Account("u", "p"),), str(tmp_path))

    monkeypatch.setattr(tour_cli, "chapters", lambda: (chapter,))
    monkeypatch.setattr(tour_cli, "_lab", empty_lab)
    monkeypatch.delenv("WIRELAB_REQUIRE_SERVICES", raising=False)
    yield CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(tour_cli.tour)
    return app


def test_summary_table_and_last_line_count_skips_apart(runner: CliRunner) -> None:
    done = runner.invoke(_app(), ["--chapter", "97"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "skipped: no browser on this machine" in done.output
    lines = done.output.splitlines()
    header = next(line for line in lines if "chapter" in line and "seconds" in line)
    assert [c.strip() for c in header.split("┃") if c.strip()] == [
        "chapter",
        "title",
        "steps",
        "passed",
        "skipped",
        "failed",
        "seconds",
    ]
    row = next(line for line in lines if line.startswith("│") and "Skips" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[:6] == ["97", "Skips", "3", "2", "1", "0"], row
    assert "3 steps: 2 passed, 1 skipped" in done.output
    assert "all steps passed" not in done.output


def test_json_counts_skips_apart(runner: CliRunner) -> None:
    done = runner.invoke(_app(), ["--chapter", "97", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["ok"] is True
    assert (report["steps"][0]["ok"], report["passed"], report["skipped"], report["failed"]) == (
        True,
        2,
        1,
        0,
    )
    assert report["chapters"] == [
        {"chapter": 97, "title": "Skips", "steps": 3, "passed": 2, "skipped": 1, "failed": 0}
    ]
    assert [s["skipped"] for s in report["steps"]] == [None, "no browser on this machine", None]


def test_a_skip_is_a_failure_when_services_are_required(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIRELAB_REQUIRE_SERVICES", "1")
    done = runner.invoke(_app(), ["--chapter", "97", "--json"])
    assert done.exit_code == 1, done.output
    report = json.loads(done.output)
    assert (report["passed"], report["skipped"], report["failed"]) == (2, 0, 1)
