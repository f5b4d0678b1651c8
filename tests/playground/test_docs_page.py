"""docs/playground.md: every command it shows exists and parses; its picture is a real PNG.

The page's commands need root, so tests/docs/test_chapter_pages.py (docs/chapters only)
does not run them; tests/playground runs the same commands as root.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.cli.tree import COMMANDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "playground.md"


def commands() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL)
    found = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append(line[2:].removeprefix("sudo "))
    return found


def test_the_page_has_commands() -> None:
    assert len(commands()) >= 6


@pytest.mark.parametrize("line", commands())
def test_each_command_parses(line: str) -> None:
    """The longest command path of the tree the line starts with parses the rest."""
    words = shlex.split(line)
    assert words[0] == "wirelab"
    for cut in range(len(words), 1, -1):
        name = " ".join(words[1:cut])
        if name in COMMANDS:
            with COMMANDS[name].make_context(f"wirelab {name}", words[cut:]):
                pass
            return
    pytest.fail(f"no such command: {line}")


def test_picture_is_a_png_drawn_by_status_chart() -> None:
    data = (PAGE.parent / "playground.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "status --chart docs/playground.png" in PAGE.read_text(encoding="utf-8")
