"""The CLI's command tree, for tests that hold every command to a rule (new ones join alone)."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer.core import TyperGroup

import wirelab.cli

try:  # typer >= 0.2x vendors click
    from typer._click.core import Command
    from typer._click.core import Parameter as Option
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import Command  # type: ignore[assignment]
    from click import Parameter as Option  # type: ignore[assignment]

__all__ = ["COMMANDS", "Command", "Option", "options", "verb_commands", "walk"]


def walk(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Command]]:
    """Every leaf command of the tree, as ``("tcp client", command)``."""
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))
    else:
        yield " ".join(path), command


#: ``{"tcp client": <command>, ...}``: every command of ``wirelab``.
COMMANDS = dict(walk(typer.main.get_command(wirelab.cli.app)))


def options(command: Command) -> list[Option]:
    """The options (not the arguments) of a command."""
    return [p for p in command.params if p.param_type_name == "option"]  # type: ignore[misc]


def verb_commands(*verbs: str) -> list[str]:
    """The commands whose last word is one of ``verbs`` (``"client"``, ``"serve"``)."""
    return sorted(name for name in COMMANDS if name.rsplit(" ", 1)[-1] in verbs)
