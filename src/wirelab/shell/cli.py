"""``wirelab shell run``: the minimal shell of chapter 16 (F92), here on your terminal.

The book's ``shell.py`` with the lab's limits: prompt ``] ``, whitespace split, no special
characters, ``show`` and ``exit``, and only the allowed programs, confined to ``--home``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from wirelab.cli.common import TimeoutOption

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
) -> None:
    """Read lines from standard input and run them (prompt '] '); exit status of the last."""
    import getpass

    from wirelab.shell.minimal import MinimalShell

    shell = MinimalShell(home, getpass.getuser(), prompt="] ", timeout=timeout)

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
