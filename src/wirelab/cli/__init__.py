"""The ``wirelab`` command: ``wirelab <topic> <verb>``, ``wirelab lab ...``, ``wirelab tour``.

Topic packages contribute their command groups through ``wirelab.<topic>.cli`` (see
:mod:`wirelab.lab.registry`). :func:`main` maps errors to exit codes: a
:class:`~wirelab.errors.WirelabError` prints one line and exits 1, a usage error exits 2,
and ``--debug`` (or ``WIRELAB_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
from types import ModuleType
from typing import Annotated

import typer
from typer import Abort, Exit

try:  # typer >= 0.2x vendors click; older releases depend on the click package
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import ClickException  # type: ignore[assignment]
from rich.logging import RichHandler

from wirelab import __version__
from wirelab.cli.common import debug_enabled, err_console
from wirelab.errors import WirelabError
from wirelab.lab.registry import topic_chapter, topic_modules
from wirelab.net.addresses import lab_names_everywhere

__all__ = ["app", "main"]


def _new_root() -> typer.Typer:
    """The root command, with its options and no topics yet."""
    root = typer.Typer(
        name="wirelab",
        help="The programs of Foundations of Python Network Programming, with a lab of real "
        "local servers. Start with `wirelab tour`.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    return root


def _version(value: bool) -> None:
    if value:
        print(f"wirelab {__version__}")
        raise typer.Exit()


def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logging.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Configure logging for the command (library code never does)."""
    level = logging.DEBUG if debug or debug_enabled() else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


def _register_commands(root: typer.Typer) -> None:
    from wirelab.cli import lab as lab_cli
    from wirelab.cli import tour as tour_cli

    root.add_typer(lab_cli.app, name="lab")
    root.command("tour")(tour_cli.tour)
    topics = [topic for module in topic_modules("cli") for topic in _topic_groups(module)]
    for _, group, help_text in sorted(topics, key=lambda t: t[0]):  # stable: module order kept
        root.add_typer(group, short_help=help_text)  # infrastructure, then book order


def _topic_groups(module: ModuleType) -> list[tuple[int, typer.Typer, str | None]]:
    """A topic CLI module's command groups, each with its chapter (0: none) and its help line."""
    found = []
    for group in getattr(module, "apps", None) or [module.app]:
        chapter = topic_chapter(module) or _chapter_in_help(group)
        found.append((chapter or 0, group, _chapter_help(group, chapter)))
    return found


_full_app: typer.Typer | None = None


def full_app() -> typer.Typer:
    """The whole command tree (every topic imported), built once: ``wirelab.cli.app``."""
    global _full_app
    if _full_app is None:
        root = _new_root()
        _register_commands(root)
        _full_app = root
    return _full_app


def __getattr__(name: str) -> typer.Typer:
    # ``app`` is built on first use: a command that names its topic imports only that topic.
    if name == "app":
        return full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _app_for(args: list[str]) -> typer.Typer:
    """The tree a command line needs: only its topic when one topic module holds it (``wirelab
    udp client`` imports ``wirelab.udp.cli`` alone, half the start-up), else the whole tree
    (the root's help, ``--version``, an unknown word, a group living in another module)."""
    first = args[0] if args else ""
    if not re.fullmatch(r"[a-z][a-z0-9]*", first) or first in ("lab", "tour"):
        return full_app()
    try:
        module = importlib.import_module(f"wirelab.{first}.cli")
    except ModuleNotFoundError:  # no such topic package (or no CLI in it): the whole tree says so
        return full_app()
    chosen = [(group, help_text) for _, group, help_text in _topic_groups(module)]
    chosen = [(group, help_text) for group, help_text in chosen if group.info.name == first]
    if len(chosen) != 1:
        return full_app()
    root = _new_root()
    root.add_typer(chosen[0][0], short_help=chosen[0][1])
    return root


#: "Chapter 5: ...", "Chapters 9-10: ...", "Chapters 1 and 4: ..." at the start of a help.
_CHAPTER_PREFIX = re.compile(r"^Chapters? ([0-9]+)[0-9, and-]*:\s*")


def _chapter_in_help(group: typer.Typer) -> int | None:
    """The chapter a topic's help starts with, for a topic without a lab service."""
    found = _CHAPTER_PREFIX.match(group.info.help) if isinstance(group.info.help, str) else None
    return int(found[1]) if found else None


def _chapter_help(group: typer.Typer, chapter: int | None) -> str | None:
    """``ch. 3   Exact-length TCP messages ...``: the group's help under its chapter number."""
    text = group.info.help
    if chapter is None or not isinstance(text, str):
        return None
    rest = _CHAPTER_PREFIX.sub("", text.strip())
    return f"ch. {chapter:<2}  {rest[:1].upper()}{rest[1:]}"


#: An error message longer than this is shortened in its middle (a 10 kB host name, echoed).
MAX_ERROR_CHARS = 400


def _one_line(message: str) -> str:
    """``message`` as one line of at most :data:`MAX_ERROR_CHARS` characters."""
    text = " ".join(message.split())
    if len(text) <= MAX_ERROR_CHARS:
        return text
    keep = MAX_ERROR_CHARS // 2 - 20
    return f"{text[:keep]} [... {len(text) - 2 * keep:,} characters ...] {text[-keep:]}"


def _not_text(args: list[str]) -> str | None:
    """Say which argument is not valid UTF-8 (Python hands such bytes over as surrogates)."""
    for position, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape")
            return f"argument {position} is not valid UTF-8 text: {raw[:60]!r}"
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with 0 (ok), 1 (error), 2 (usage error) or 130 (interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    problem = _not_text(args)
    if problem is not None:
        err_console.print(f"wirelab: error: {problem}", markup=False)
        sys.exit(2)
    if "--debug" in args:  # accepted anywhere on the line, not only before the topic
        args = [a for a in args if a != "--debug"]
        os.environ["WIRELAB_DEBUG"] = "1"
    debug = debug_enabled()
    lab_names_everywhere()  # while a lab runs, example.com is the lab for every library
    command = typer.main.get_command(_app_for(args))
    try:
        result = command.main(args=args, prog_name="wirelab", standalone_mode=False)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (Abort, KeyboardInterrupt):
        err_console.print("wirelab: interrupted")
        sys.exit(130)
    except WirelabError as exc:  # an OSError is mapped at its seam, never here
        if debug:
            raise
        err_console.print(f"wirelab: error: {_one_line(str(exc))}", markup=False)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
