"""The minimal shell (F92): whitespace split, no special characters, a short allow-list.

The book's ``shell.py`` shows what a shell does *not* have to do: it splits a line on
whitespace and runs the words as an argument list, with no quoting, no variables, no globs.
This is that shell, hardened so the lab can use it as the login shell of its accounts (the
Telnet and SSH servers run it):

* A line is split on whitespace. A character a POSIX shell would interpret to change *what
  runs* or *where output goes* (:data:`SPECIAL_CHARACTERS`: ``; & | < > $ `` and so on) is
  refused with one line; quotes and ``!`` have no meaning here and are passed literally, so
  ``echo "Hello, world!"`` prints its quotes, the book's lesson.
* Built-ins: ``show`` (prints the parsed argument list, as the book's does), ``exit``,
  ``exec CMD ...`` (runs CMD, then ends the session, as ``exec`` ends a real shell), ``pwd``,
  ``whoami`` and ``tick SECONDS WORD ...`` (prints one word per line, pausing before each:
  what the book's ``echo One; sleep 2; echo Two`` did, without a ``;``).
* Anything else must be in :data:`ALLOWED_COMMANDS` and runs as a child process without a
  shell, in the account's lab home, with a small environment, a time limit and an output cap.
* Every argument of a file command (``ls``, ``cat``, ``wc``, ``head``) that is not a short
  option must name a path inside the home: absolute paths, ``..`` and symbolic links that
  lead out are refused. Long options (``--files0-from=...``) are refused.

It never starts a real system shell and never names a path outside the home.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from wirelab.errors import WirelabError

__all__ = [
    "ALLOWED_COMMANDS",
    "FILE_COMMANDS",
    "MAX_LINE",
    "SPECIAL_CHARACTERS",
    "MinimalShell",
    "ShellRefused",
    "parse_line",
]

#: Characters a POSIX shell interprets (separators, redirection, substitution, globs, comments).
SPECIAL_CHARACTERS = frozenset(";&|<>$`\\(){}*?[]~#\x00\r\n")

#: Programs the shell may run (found on a fixed ``PATH``), besides its built-ins.
ALLOWED_COMMANDS = (
    "cat",
    "date",
    "echo",
    "false",
    "head",
    "ls",
    "sleep",
    "true",
    "uname",
    "uptime",
    "wc",
)

#: Allowed programs whose non-option arguments are paths (checked against the home).
FILE_COMMANDS = frozenset({"cat", "head", "ls", "wc"})

#: Allowed programs whose arguments are limited further: ``date`` only prints (``-s`` would
#: set the clock, ``-f FILE`` would read a file), so it takes a ``+FORMAT`` or ``-u/-R/-I``;
#: ``ls`` does not follow links (``-L``).
_ARGUMENT_RULES: dict[str, Callable[[str], bool]] = {
    "date": lambda arg: arg.startswith("+") or arg in ("-u", "-R", "-I"),
    # ls -L follows links: a link to outside the home would be listed through
    "ls": lambda arg: not (arg.startswith("-") and "L" in arg),
}

#: The longest line the shell reads (characters).
MAX_LINE = 4096

_PATH = "/usr/bin:/bin"
_BUILTINS = ("exec", "exit", "pwd", "show", "tick", "whoami")

Write = Callable[[str], Awaitable[None] | None]


class ShellRefused(WirelabError):
    """The shell will not run a line (special character, command not allowed, path outside)."""


def parse_line(line: str) -> list[str]:
    """Split ``line`` on whitespace, refusing any special character (:data:`SPECIAL_CHARACTERS`).

    Raises:
        ShellRefused: the line is too long or holds a special character (named).
    """
    if len(line) > MAX_LINE:
        raise ShellRefused(f"line longer than {MAX_LINE} characters")
    stripped = line.rstrip("\r\n")
    for char in stripped:
        if char in SPECIAL_CHARACTERS or (ord(char) < 32 and char != "\t"):
            raise ShellRefused(f"special character {char!r} refused: this shell has none")
    return stripped.split()


@dataclass
class MinimalShell:
    """One session of the minimal shell for ``user``, confined to ``home``.

    Args:
        home: the account's lab home (its ``/``).
        user: the account name (``whoami``, ``$USER`` of children).
        prompt: printed before each line by :meth:`interact`.
        timeout: seconds a child may run before it is killed.
        max_output: bytes of a child's output passed on (the rest is dropped, and said so).
        term: the terminal type the session negotiated (``$TERM`` of children).
    """

    home: Path
    user: str
    prompt: str = "$ "
    timeout: float = 30.0
    max_output: int = 1 << 20
    term: str = "dumb"
    _home_real: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._home_real = self.home.resolve()

    # -- checks -------------------------------------------------------------------------------

    def confine(self, name: str) -> Path:
        """Return the real path ``name`` (relative to the home) names, if it stays inside.

        Raises:
            ShellRefused: ``name`` is absolute, has a ``..`` part, or leads out of the home.
        """
        if name.startswith("/"):
            raise ShellRefused(f"absolute path refused: {name}")
        if ".." in Path(name).parts:
            raise ShellRefused(f"'..' refused: {name}")
        real = (self._home_real / name).resolve()
        if real != self._home_real and self._home_real not in real.parents:
            raise ShellRefused(f"path leads out of the home: {name}")
        return real

    def check(self, argv: list[str]) -> str:
        """Return the program ``argv`` runs (a full path), after the allow-list and path checks.

        Raises:
            ShellRefused: the command is not allowed, or an argument is refused.
        """
        command = argv[0]
        if "/" in command or command not in ALLOWED_COMMANDS:
            raise ShellRefused(f"command not allowed: {command} (allowed: {self.allowed_text()})")
        program = shutil.which(command, path=_PATH)
        if program is None:
            raise ShellRefused(f"command not installed here: {command}")
        rule = _ARGUMENT_RULES.get(command)
        for arg in argv[1:]:
            if arg.startswith("--"):
                raise ShellRefused(f"long options refused: {arg}")
            if rule is not None and not rule(arg):
                raise ShellRefused(f"{command} does not take {arg} here")
            if command in FILE_COMMANDS and not (arg.startswith("-") and len(arg) > 1):
                self.confine(arg)
        return program

    @staticmethod
    def allowed_text() -> str:
        """The built-ins and allowed programs, for messages."""
        return " ".join(sorted(_BUILTINS + ALLOWED_COMMANDS))

    # -- running ------------------------------------------------------------------------------

    async def run_line(self, line: str, out: Write, err: Write) -> int | None:
        """Run one line; return its exit status, or None when the session should end.

        A refused line writes one ``shell: ...`` line to ``err`` and returns 126 (127 for an
        unknown command). ``exec CMD`` runs CMD and returns None after it.
        """
        try:
            argv = parse_line(line)
        except ShellRefused as exc:
            await _emit(err, f"shell: {exc}\n")
            return None if line.split()[:1] == ["exec"] else 126
        if not argv:
            return 0
        if argv == ["exit"] or argv[0] == "exit":
            return None
        if argv[0] == "exec":
            if len(argv) > 1:
                await self.run_argv(argv[1:], out, err)
            return None
        return await self.run_argv(argv, out, err)

    async def run_argv(self, argv: list[str], out: Write, err: Write) -> int:
        """Run an argument list (a built-in or an allowed program); return its exit status."""
        command = argv[0]
        if command == "show":
            await _emit(out, f"Arguments: {argv[1:]!r}\n")
            return 0
        if command == "pwd":
            await _emit(out, "/\n")
            return 0
        if command == "whoami":
            await _emit(out, f"{self.user}\n")
            return 0
        if command == "tick":
            return await self._tick(argv[1:], out, err)
        if command in ("exit", "exec"):
            await _emit(err, f"shell: {command} cannot be nested\n")
            return 126
        try:
            program = self.check(argv)
        except ShellRefused as exc:
            await _emit(err, f"shell: {exc}\n")
            return 127 if "not allowed" in str(exc) else 126
        return await self._spawn(program, argv, out, err)

    async def _tick(self, args: list[str], out: Write, err: Write) -> int:
        try:
            seconds = float(args[0]) if args else -1.0
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 10 or len(args) > 101:
            await _emit(err, "shell: usage: tick SECONDS WORD... (0-10 s, at most 100 words)\n")
            return 2
        loop = asyncio.get_running_loop()
        start = loop.time()
        for number, word in enumerate(args[1:], 1):  # on a fixed schedule: no drift
            await asyncio.sleep(max(0.0, start + number * seconds - loop.time()))
            await _emit(out, word + "\n")
        return 0

    async def _spawn(self, program: str, argv: list[str], out: Write, err: Write) -> int:
        env = {
            "PATH": _PATH,
            "HOME": str(self._home_real),
            "USER": self.user,
            "LOGNAME": self.user,
            "TERM": self.term,
            "LANG": "C.UTF-8",
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                program,
                *argv[1:],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._home_real,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            await _emit(err, f"shell: cannot run {argv[0]}: {exc.strerror or exc}\n")
            return 126
        budget = [self.max_output]
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(_pump(proc.stdout, out, budget), _pump(proc.stderr, err, budget))
        try:
            await asyncio.wait_for(asyncio.shield(pumps), self.timeout)
            status = await asyncio.wait_for(proc.wait(), self.timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            with contextlib.suppress(Exception):
                await pumps
            if isinstance(exc, asyncio.CancelledError):
                raise
            await _emit(err, f"shell: {argv[0]} killed after {self.timeout:g} s\n")
            return 124
        if budget[0] < 0:
            await _emit(err, f"shell: output cut at {self.max_output} bytes\n")
        return status

    # -- a whole session ----------------------------------------------------------------------

    async def interact(
        self,
        readline: Callable[[], Awaitable[str]],
        out: Write,
        err: Write,
    ) -> int:
        """Prompt, read and run lines until ``exit``, ``exec`` or end of input.

        Returns:
            The exit status of the last command (0 if none ran).
        """
        status = 0
        while True:
            await _emit(out, self.prompt)
            line = await readline()
            if not line:
                return status
            result = await self.run_line(line, out, err)
            if result is None:
                return status if line.split()[:1] != ["exec"] else 0
            status = result


async def _pump(stream: asyncio.StreamReader, write: Write, budget: list[int]) -> None:
    while chunk := await stream.read(65536):
        if budget[0] > 0:
            await _emit(write, chunk[: budget[0]].decode("utf-8", "replace"))
        budget[0] -= len(chunk)


async def _emit(write: Write, text: str) -> None:
    result = write(text)
    if result is not None:
        await result


def environment_home(base: Path, user: str) -> Path:
    """Create (if needed) and return ``user``'s lab home under ``base``, seeded once."""
    home = base / user
    (home / "etc").mkdir(parents=True, exist_ok=True)
    release = home / "etc" / "lsb-release"
    if not release.exists():
        release.write_text(
            "DISTRIB_ID=Wirelab\nDISTRIB_RELEASE=16\nDISTRIB_CODENAME=lab\n"
            'DISTRIB_DESCRIPTION="wirelab chapter 16 lab home"\n'
        )
    readme = home / "README"
    if not readme.exists():
        readme.write_text(f"This is {user}'s lab home: the shell and SFTP see it as /.\n")
    os.chmod(home, 0o700)
    return home
