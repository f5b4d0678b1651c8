"""An interactive SSH session on the local terminal (chapter 16, F95): what ``ssh HOST`` does.

The book's ``ssh_simple.py`` types fixed lines into a remote PTY and prints what comes back
(:func:`wirelab.ssh.client.shell_transcript` keeps that). :func:`interactive_shell` is the
real thing, for a person at a terminal:

* the local terminal is put in raw mode (no local echo, no line editing, Ctrl-C and Ctrl-D
  are bytes for the remote side), so the remote PTY's line editor is the only one;
* the remote PTY is asked for with the local ``$TERM`` and the local window size, and every
  ``SIGWINCH`` (the window was resized) is passed on as a window-change request;
* bytes go both ways unchanged; the remote side's stdout and stderr are written to ours;
* the terminal's settings are restored however the session ends: the remote ``exit``, the
  connection dropping, an exception, a cancellation.

The exit status is the remote one (255 when the remote side gave none, as ``ssh`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import termios
import tty
from typing import Any

import asyncssh

from wirelab.errors import ConfigError, ConnectError

__all__ = ["NO_STATUS", "interactive_shell", "terminal_size"]

#: The exit status when the remote side ends without one (``ssh`` uses the same).
NO_STATUS = 255

#: Bytes read from the terminal, or from the channel, at a time.
_CHUNK = 16 << 10


def terminal_size(fd: int) -> tuple[int, int]:
    """``(columns, rows)`` of the terminal on ``fd`` (80 x 24 when it reports none)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    return (size.columns or 80), (size.lines or 24)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


async def interactive_shell(
    conn: asyncssh.SSHClientConnection,
    *,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    term: str | None = None,
) -> int:
    """Run a remote shell on a PTY, attached to the local terminal, until it ends.

    Args:
        conn: an authenticated connection (:func:`wirelab.ssh.client.connect`).
        stdin_fd: the terminal the keys come from (put in raw mode meanwhile).
        stdout_fd: where the remote output goes.
        stderr_fd: where the remote error output goes.
        term: the terminal type to ask for (default ``$TERM``, else ``vt100``).

    Returns:
        The remote exit status (:data:`NO_STATUS` when there is none).

    Raises:
        ConfigError: ``stdin_fd`` is not a terminal.
        ConnectError: the session could not be opened, or broke.
    """
    if not os.isatty(stdin_fd):
        raise ConfigError(
            "an interactive shell needs a terminal on stdin "
            "(for a script, use `wirelab ssh run` or `wirelab ssh client`)"
        )
    term = term or os.environ.get("TERM") or "vt100"
    loop = asyncio.get_running_loop()
    try:
        process: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
            term_type=term, term_size=terminal_size(stdin_fd), encoding=None
        )
    except (asyncssh.Error, OSError) as exc:
        raise ConnectError(f"the shell channel could not be opened: {exc}") from exc

    saved = termios.tcgetattr(stdin_fd)
    stdin_open = True

    def forward_keys() -> None:
        nonlocal stdin_open
        try:
            data = os.read(stdin_fd, _CHUNK)
        except OSError:
            data = b""
        if data:
            process.stdin.write(data)
            return
        stdin_open = False  # the terminal went away: tell the remote side, stop reading
        loop.remove_reader(stdin_fd)
        with contextlib.suppress(OSError, asyncssh.Error):
            process.stdin.write_eof()

    def resized() -> None:
        with contextlib.suppress(OSError, asyncssh.Error):
            process.change_terminal_size(*terminal_size(stdin_fd))

    async def pump(stream: Any, fd: int) -> None:
        while chunk := await stream.read(_CHUNK):
            _write_all(fd, chunk)

    winch = False
    try:
        tty.setraw(stdin_fd, termios.TCSANOW)
        loop.add_reader(stdin_fd, forward_keys)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no main thread
            loop.add_signal_handler(signal.SIGWINCH, resized)
            winch = True
        await asyncio.gather(pump(process.stdout, stdout_fd), pump(process.stderr, stderr_fd))
        await process.wait_closed()
    except (asyncssh.Error, OSError) as exc:
        raise ConnectError(f"the shell session broke: {exc}") from exc
    finally:
        if stdin_open:
            loop.remove_reader(stdin_fd)
        if winch:
            loop.remove_signal_handler(signal.SIGWINCH)
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        process.close()
    status = process.exit_status
    return NO_STATUS if status is None or status < 0 else int(status)
