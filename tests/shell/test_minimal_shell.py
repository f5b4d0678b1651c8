"""The minimal shell (F92): whitespace split, no special characters, an allow-list, the home."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.shell.minimal import SPECIAL_CHARACTERS, MinimalShell, ShellRefused, parse_line


def run(shell: MinimalShell, line: str) -> tuple[int | None, str, str]:
    out: list[str] = []
    err: list[str] = []
    status = asyncio.run(shell.run_line(line, out.append, err.append))
    return status, "".join(out), "".join(err)


@pytest.fixture
def shell(tmp_path: Path) -> MinimalShell:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "secret").write_text("outside the home\n")
    return MinimalShell(home, "brandon", timeout=2.0)


def test_a_line_is_split_on_whitespace_only() -> None:
    assert parse_line("show  a\tb   c\n") == ["show", "a", "b", "c"]
    assert parse_line('echo "Hello, world!"') == ["echo", '"Hello,', 'world!"']


@pytest.mark.parametrize("char", sorted(SPECIAL_CHARACTERS - {"\x00", "\r", "\n"}))
def test_the_shell_refuses_metacharacters(shell: MinimalShell, char: str) -> None:
    with pytest.raises(ShellRefused, match="special character"):
        parse_line(f"echo a{char}b")
    status, out, err = run(shell, f"echo a{char}b")
    assert status == 126 and out == "" and "special character" in err


def test_show_prints_the_argument_list_as_the_book_does(shell: MinimalShell) -> None:
    assert run(shell, "show a b") == (0, "Arguments: ['a', 'b']\n", "")


def test_quotes_have_no_meaning(shell: MinimalShell) -> None:
    status, out, _ = run(shell, 'echo "Hello, world!"')
    assert status == 0 and out == '"Hello, world!"\n'


def test_exit_and_exec_end_the_session(shell: MinimalShell) -> None:
    assert run(shell, "exit")[0] is None
    status, out, _ = run(shell, "exec echo bye")
    assert status is None and out == "bye\n"
    status, _, err = run(shell, "exec echo $TERM")
    assert status is None and "special character" in err


@pytest.mark.parametrize("line", ["bash", "sh -c id", "/bin/ls", "python3 -c 1", "rm notes.txt"])
def test_the_shell_refuses_commands_not_allowed(shell: MinimalShell, line: str) -> None:
    status, out, err = run(shell, line)
    assert status == 127 and out == "" and "not allowed" in err
    assert (shell.home / "notes.txt").exists()


def test_allowed_commands_run_in_the_home_with_exit_status(shell: MinimalShell) -> None:
    assert run(shell, "cat notes.txt") == (0, "one\ntwo\nthree\n", "")
    assert run(shell, "ls")[1] == "notes.txt\n"
    assert run(shell, "wc -l notes.txt")[1].split() == ["3", "notes.txt"]
    assert run(shell, "false")[0] == 1
    assert run(shell, "pwd") == (0, "/\n", "")
    assert run(shell, "whoami") == (0, "brandon\n", "")


@pytest.mark.parametrize(
    "line",
    [
        "cat /etc/passwd",
        "cat ../secret",
        "ls ..",
        "head notes.txt/../../secret",
        "wc --files0-from=x",
        "date -s 2000-01-01",
        "date -f notes.txt",
        "ls -RL",
    ],
)
def test_paths_outside_the_home_are_refused(shell: MinimalShell, line: str) -> None:
    status, out, err = run(shell, line)
    assert status == 126 and out == "" and err.startswith("shell: ")


def test_a_symlink_leading_out_of_the_home_is_refused(shell: MinimalShell) -> None:
    os.symlink(shell.home.parent, shell.home / "escape")
    status, out, err = run(shell, "cat escape/secret")
    assert status == 126 and "leads out" in err and out == ""


def test_a_command_over_its_time_is_killed(tmp_path: Path) -> None:
    shell = MinimalShell(tmp_path, "brandon", timeout=0.3)
    status, _, err = run(shell, "sleep 5")
    assert status == 124 and "killed after" in err


def test_output_is_capped(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    shell = MinimalShell(tmp_path, "brandon", max_output=1000)
    status, out, err = run(shell, "cat big")
    assert status == 0 and len(out) == 1000 and "output cut" in err


def test_tick_prints_words_over_time(shell: MinimalShell) -> None:
    assert run(shell, "tick 0 One Two") == (0, "One\nTwo\n", "")
    assert run(shell, "tick 99 x")[0] == 2


def test_the_cli_runs_the_book_session(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("hi\n")
    done = run_wirelab(
        "shell", "run", "--home", str(tmp_path), input="show a b\ncat f\necho a;b\nexit\n"
    )
    assert done.returncode == 126, done.stderr  # exit: the status of the last line, as sh
    assert done.stdout.startswith("] Arguments: ['a', 'b']\n] hi\n] ")
    assert "special character ';'" in done.stderr


def test_the_cli_reports_json_and_the_last_status(tmp_path: Path) -> None:
    import json

    done = run_wirelab("shell", "run", "--home", str(tmp_path), "--json", input="show x\nfalse\n")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [(r["line"], r["status"]) for r in report] == [("show x", 0), ("false", 1)]
    assert report[0]["stdout"] == "Arguments: ['x']\n"


def test_date_prints_but_sets_nothing(shell: MinimalShell) -> None:
    status, out, _ = run(shell, "date -u +%Y")
    assert status == 0 and out.strip().isdigit()
