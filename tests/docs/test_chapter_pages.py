"""Run the shell examples of every chapter page, so the docs cannot drift from the code.

In ``docs/chapters/*.md``, a fenced ``console`` block holds commands (lines starting with
``$ ``) each followed by the output a reader should see. The test runs each ``wirelab ...``
command against the session lab and checks that the shown lines appear in the real output,
in order. Inside a line, ``...`` matches anything (ports, times); a line that is only ``...``
is ignored. A command ending in ``# exits N`` must exit with N; the others must exit 0.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "chapters"
_BLOCK = re.compile(r"^```console\n(.*?)^```", re.M | re.S)
_EXIT = re.compile(r"\s+#\s*exits\s+(\d+)\s*$")


def _examples() -> list[tuple[str, str, int, list[str]]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for block in _BLOCK.findall(page.read_text(encoding="utf-8")):
            command: str | None = None
            expected: list[str] = []
            for line in [*block.splitlines(), "$ "]:
                if line.startswith("$ "):
                    if command:
                        code = _EXIT.search(command)
                        cmd = _EXIT.sub("", command)
                        found.append((page.name, cmd, int(code.group(1)) if code else 0, expected))
                    command, expected = line[2:].strip(), []
                elif line.strip() and line.strip() != "...":
                    expected.append(line.rstrip())
    return found


def _pattern(line: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in line.strip().split("...")]
    return re.compile(r"\s*" + ".*?".join(parts) + r"\s*$")


EXAMPLES = _examples()


def test_every_chapter_page_has_examples() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "no chapter pages"
    without = [p.name for p in pages if not any(e[0] == p.name for e in EXAMPLES)]
    assert not without, f"chapter pages without a console example: {without}"


@pytest.mark.parametrize(
    ("page", "command", "exit_code", "expected"),
    EXAMPLES,
    ids=[f"{e[0]}:{e[1][:60]}" for e in EXAMPLES],
)
def test_example(
    page: str, command: str, exit_code: int, expected: list[str], wirelab_env: dict[str, str]
) -> None:
    argv = shlex.split(command)
    assert argv[0] == "wirelab", f"{page}: examples must run wirelab commands, not {argv[0]!r}"
    done = subprocess.run(
        [sys.executable, "-m", "wirelab", *argv[1:]],
        env=wirelab_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (done.stdout + done.stderr).splitlines()
    assert done.returncode == exit_code, f"{command!r} exited {done.returncode}:\n{done.stderr}"
    position = 0
    for want in expected:
        pattern = _pattern(want)
        while position < len(output) and not pattern.match(output[position]):
            position += 1
        assert position < len(output), (
            f"{page}: {command!r} did not print {want!r} (in order). Output:\n" + "\n".join(output)
        )
        position += 1
