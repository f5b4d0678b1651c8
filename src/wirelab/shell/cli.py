"""``wirelab shell run``: the minimal shell of chapter 16 (F92), here on your terminal.

The book's ``shell.py`` with the lab's limits: prompt ``] ``, whitespace split, no special
characters, ``show`` and ``exit``, and only the allowed programs, confined to ``--home``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import JsonOption, TimeoutOption, print_json

if TYPE_CHECKING:
    from wirelab.shell.minimal import MinimalShell

__all__ = ["CHAPTER", "app"]

#: This topic has no lab service of its own (the SSH and Telnet hosts run it).
CHAPTER = 16

app = typer.Typer(
    name="shell",
    help="Chapter 16: the minimal shell: whitespace split, no special characters, an allow-list.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    home: Annotated[
        Path,
        typer.Option(
            "--home", help="The directory the shell is confined to.", file_okay=False, exists=True
        ),
    ] = Path("."),
    timeout: TimeoutOption = 30.0,
    json_out: JsonOption = False,
) -> None:
    """Read lines from standard input and run them (prompt '] '); exit status of the last.

    With --json, no prompt: one JSON document of every line's output and status at the end.
    """
    import getpass

    from wirelab.shell.minimal import MinimalShell

    shell = MinimalShell(home, getpass.getuser(), prompt="] ", timeout=timeout)
    if json_out:
        raise typer.Exit(_run_json(shell))

    def out(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def err(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    async def readline() -> str:
        return await asyncio.to_thread(sys.stdin.readline)

    status = asyncio.run(shell.interact(readline, out, err))
    raise typer.Exit(status)


def _run_json(shell: MinimalShell) -> int:
    """Run every line of standard input; print one JSON document; return the last status."""
    report: list[dict[str, object]] = []
    status = 0

    async def go() -> None:
        nonlocal status
        for line in sys.stdin:
            out: list[str] = []
            err: list[str] = []
            result = await shell.run_line(line, out.append, err.append)
            report.append(
                {
                    "line": line.rstrip("\n"),
                    "stdout": "".join(out),
                    "stderr": "".join(err),
                    "status": result,
                }
            )
            if result is None:
                break
            status = result

    asyncio.run(go())
    print_json(report)
    return status
