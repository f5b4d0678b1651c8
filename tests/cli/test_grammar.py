"""The CLI grammar of CONTRIBUTING.md, checked over every command of the tree.

Each rule is a test parametrized by command, so a failure names the command and what it broke:

* a short flag has one long name across the whole CLI, and it is a row of the table of
  reserved short flags in CONTRIBUTING.md (parsed from the file: the doc and the test agree);
* a command that starts a server to run until Ctrl-C is named ``serve`` (the rule below);
* a client and a server name their peer one way: an optional positional ``HOST`` (loopback
  by default for a server) and ``-p/--port``;
* every command that reports a result has ``--json`` (not ``serve``, ``lab up``/``down``);
* a usage error exits 2: an unknown flag, ``-p 70000``, ``-t inf``, an empty bind host;
* pictures are written with ``--chart FILE``, never ``--png``;
* ``wirelab --help`` lists the topics in book order, each with its chapter number.

Parsing is checked in-process with click's own ``make_context`` (which parses the arguments
and runs their callbacks without running the command), so a command that fails to refuse a
bad value is reported, not run; a few real runs check the exit code end to end.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.cli.tree import COMMANDS, Command, Option, options, verb_commands
from tests.conftest import run_wirelab

try:  # typer >= 0.2x vendors click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException, UsageError  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[2]

#: Commands that start servers as a side effect of another job (their verb says which job).
NOT_SERVE_VERBS = {
    "lab up": "starts the whole lab, every service at once",
    "playground up": "builds the book's network of namespaces, with their servers",
}

#: Command groups that are infrastructure, not a chapter of the book.
INFRASTRUCTURE = {"lab", "tour", "playground"}

#: Verbs that name a server command by another name than ``serve``.
SERVER_VERBS = {"server", "servers", "pythagoras", "daemon", "run-server"}


def reserved_short_flags() -> dict[str, str]:
    """The table of CONTRIBUTING.md: ``{"-p": "--port", ...}``."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(-[A-Za-z])` \| `(--[a-z][a-z-]*)` \|", text, flags=re.MULTILINE)
    assert len(rows) >= 5, "the short-flag table of CONTRIBUTING.md was not found"
    table = dict(rows)
    assert len(table) == len(rows), "a short flag has two rows in CONTRIBUTING.md"
    return table


RESERVED = reserved_short_flags()


def shorts(option: Option) -> list[str]:
    names = [*option.opts, *option.secondary_opts]
    return [n for n in names if re.fullmatch(r"-[A-Za-z0-9]", n)]


def longs(option: Option) -> list[str]:
    return [n for n in [*option.opts, *option.secondary_opts] if n.startswith("--")]


def with_option(flag: str) -> list[str]:
    return sorted(
        name for name, cmd in COMMANDS.items() if any(flag in o.opts for o in options(cmd))
    )


def parse_error(name: str, args: list[str]) -> ClickException | None:
    """Parse ``args`` for command ``name`` as the CLI would; the usage error, or None."""
    command = COMMANDS[name]
    try:
        with command.make_context(f"wirelab {name}", list(args)):
            return None
    except ClickException as exc:
        return exc


def test_the_tree_is_found() -> None:
    assert len(COMMANDS) > 30
    assert {"tcp client", "lab up", "tour"} <= set(COMMANDS)


# -- short flags ------------------------------------------------------------------------------


def test_a_short_flag_has_one_long_name_across_the_cli() -> None:
    meanings: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, command in COMMANDS.items():
        for option in options(command):
            for short in shorts(option):
                # an option may keep an old long alias (--count/--limit): the reserved name counts
                reserved = RESERVED.get(short)
                long = reserved if reserved in longs(option) else "/".join(longs(option))
                meanings[short][long or "(none)"].append(name)
    clashes = {
        short: {long: cmds for long, cmds in by_long.items()}
        for short, by_long in meanings.items()
        if len(by_long) > 1
    }
    assert not clashes, "short flags with more than one meaning:\n" + "\n".join(
        f"  {short}: " + "; ".join(f"{long} in {', '.join(cmds)}" for long, cmds in by.items())
        for short, by in sorted(clashes.items())
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_short_flags_are_the_reserved_ones(name: str) -> None:
    wrong = []
    for option in options(COMMANDS[name]):
        for short in shorts(option):
            expected = RESERVED.get(short)
            if expected is None:
                wrong.append(f"{short} ({'/'.join(longs(option))}) is not in the table")
            elif expected not in longs(option):
                wrong.append(f"{short} is {'/'.join(longs(option))}, reserved for {expected}")
    assert not wrong, f"wirelab {name}: " + "; ".join(wrong)


# -- verbs ------------------------------------------------------------------------------------


def is_server_command(name: str, command: Command) -> bool:
    """The rule: the verb is a server's name, or its help says it runs until Ctrl-C."""
    verb = name.rsplit(" ", 1)[-1]
    text = " ".join((command.help or "").split())
    return verb in SERVER_VERBS or bool(re.search(r"Ctrl-C stops|until Ctrl-C", text))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_server_command_is_named_serve(name: str) -> None:
    if name in NOT_SERVE_VERBS or not is_server_command(name, COMMANDS[name]):
        return
    assert name.rsplit(" ", 1)[-1] == "serve", f"wirelab {name} starts a server: name it serve"


def test_a_topic_has_at_most_one_serve() -> None:
    serves: dict[str, list[str]] = defaultdict(list)
    for name, command in COMMANDS.items():
        if name not in NOT_SERVE_VERBS and is_server_command(name, command):
            serves[name.rsplit(" ", 1)[0]].append(name)
    assert all(len(found) == 1 for found in serves.values()), dict(serves)


@pytest.mark.parametrize("name", verb_commands("client", "serve"))
def test_clients_and_servers_name_their_peer_the_same_way(name: str) -> None:
    """An optional positional HOST, then -p/--port (a server's HOST defaults to loopback)."""
    command = COMMANDS[name]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    assert arguments and arguments[0].name == "host", f"wirelab {name}: no positional HOST"
    assert not arguments[0].required, f"wirelab {name}: HOST must be optional"
    if name.endswith(" serve"):  # loopback unless asked (said in the help where computed)
        host = arguments[0]
        loopback = host.default == "127.0.0.1" or "127.0.0.1" in (getattr(host, "help", "") or "")
        assert loopback, f"wirelab {name} binds {host.default} by default"
    ports = [o for o in options(command) if "-p" in o.opts]
    assert ports and "--port" in ports[0].opts, f"wirelab {name}: no -p/--port"


# -- usage errors exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unknown_flag_is_a_usage_error(name: str) -> None:
    error = parse_error(name, ["--no-such-flag"])
    assert error is not None and error.exit_code == 2, f"wirelab {name} --no-such-flag"


@pytest.mark.parametrize("name", with_option("-p"))
def test_a_port_out_of_range_is_a_usage_error(name: str) -> None:
    error = parse_error(name, ["-p", "70000"])
    assert isinstance(error, UsageError) and error.exit_code == 2, (
        f"wirelab {name} -p 70000 is not refused while parsing: {error}"
    )
    assert "70000" in error.format_message(), error.format_message()


@pytest.mark.parametrize("name", with_option("-t"))
def test_an_infinite_timeout_is_a_usage_error(name: str) -> None:
    error = parse_error(name, ["-t", "inf"])
    assert isinstance(error, UsageError) and error.exit_code == 2, (
        f"wirelab {name} -t inf is not refused while parsing: {error}"
    )


def bind_host_commands() -> list[str]:
    found = []
    for name, command in COMMANDS.items():
        if name.rsplit(" ", 1)[-1] != "serve":
            continue
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        if arguments and arguments[0].name == "host":
            found.append(name)
    return sorted(found)


@pytest.mark.parametrize("name", bind_host_commands())
def test_an_empty_bind_host_is_a_usage_error(name: str) -> None:
    error = parse_error(name, [""])
    assert isinstance(error, UsageError) and error.exit_code == 2, f"wirelab {name} ''"


def test_lab_up_refuses_an_empty_host() -> None:
    error = parse_error("lab up", ["--host", ""])
    assert isinstance(error, UsageError) and error.exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["tcp", "client", "--no-such-flag"],
        ["tcp", "client", "-p", "70000"],
        ["lab", "up", "--host", ""],
    ],
)
def test_usage_errors_exit_2_end_to_end(args: list[str], tmp_path: Path) -> None:
    done = run_wirelab(*args, env=dict(os.environ, WIRELAB_HOME=str(tmp_path)))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


#: Commands that run something rather than report a result: no --json.
NO_REPORT = {
    "lab up": "runs the lab",
    "lab down": "stops it",
    "playground up": "runs the playground",
    "playground down": "stops it",
    "playground exec": "runs the user's command in a host",
    "playground shell": "an interactive shell",
    "ssh shell": "an interactive shell on a remote PTY",
    "imap browse": "an interactive mail browser (imap summary and fetch report)",
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_that_reports_has_json(name: str) -> None:
    if name.endswith(" serve") or name in NO_REPORT:
        return
    assert any("--json" in o.opts for o in options(COMMANDS[name])), f"wirelab {name}: no --json"


# -- pictures -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_pictures_are_written_with_chart(name: str) -> None:
    for option in options(COMMANDS[name]):
        assert "--png" not in option.opts, f"wirelab {name}: --png is spelled --chart FILE"


# -- the top-level help -------------------------------------------------------------------


def test_help_lists_the_topics_in_book_order_with_their_chapters() -> None:
    done = run_wirelab("--help", env=dict(os.environ, COLUMNS="120"))
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^[│|]?\s+([a-z]+)\s+ch\. (\d+)\b", done.stdout, flags=re.MULTILINE)
    assert rows, done.stdout
    topics_in_tree = {name.split()[0] for name in COMMANDS} - INFRASTRUCTURE
    unlabelled = topics_in_tree - {topic for topic, _ in rows}
    assert not unlabelled, f"topics without a chapter in wirelab --help: {sorted(unlabelled)}"
    chapters = [int(number) for _, number in rows]
    assert chapters == sorted(chapters), rows
    topics = [topic for topic, _ in rows]
    assert {"geo", "udp", "tcp", "dns", "tls", "zen"} <= set(topics), topics
    assert topics.index("geo") < topics.index("udp") < topics.index("tcp") < topics.index("zen")
