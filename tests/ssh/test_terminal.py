"""``wirelab ssh shell``: an interactive session on a pseudo-terminal (F95).

The CLI runs as a child process whose stdin, stdout and stderr are the slave side of a pty
(as a person's terminal would be); the test types on the master side. A second server, an
asyncssh one written here, records what the client asked for (terminal type, window size,
window changes) and echoes raw bytes, so passthrough is checked byte for byte.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from tests.ssh.conftest import running_ssh, target
from wirelab.lab.service import LabContext
from wirelab.ssh.client import connect
from wirelab.ssh.keys import client_key_file, known_hosts_file
from wirelab.ssh.terminal import interactive_shell


def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def read_while(fd: int, more: Callable[[], bool], seen: bytearray, seconds: float) -> None:
    """Read the pty master into ``seen`` while ``more()`` and the time lasts (or until EOF)."""
    deadline = time.monotonic() + seconds
    while more():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the slave side is closed
                return
            if not chunk:
                return
            seen += chunk


def read_until(fd: int, needle: bytes, seen: bytearray, seconds: float = 15.0) -> bytes:
    """Read the pty master until ``needle`` has appeared in ``seen`` (kept across calls)."""
    read_while(fd, lambda: needle not in seen, seen, seconds)
    assert needle in seen, f"{needle!r} did not arrive; got {bytes(seen)[-400:]!r}"
    return bytes(seen)


def drive_cli(lab: LabContext, port: int, keys: list[bytes]) -> tuple[int, bytes, bool]:
    """Run ``wirelab ssh shell`` on a pty, type ``keys``; (exit status, output, restored)."""
    master, slave = pty.openpty()
    set_size(slave, 100, 30)
    before = termios.tcgetattr(slave)
    env = {**os.environ, "WIRELAB_HOME": str(lab.state_dir), "NO_COLOR": "1", "TERM": "xterm"}
    argv = [
        sys.executable, "-m", "wirelab", "ssh", "shell", "127.0.0.1", "-p", str(port),
        "--key", str(client_key_file(lab.state_dir, "brandon")),
        "--known-hosts", str(known_hosts_file(lab.state_dir)),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
    seen = bytearray()
    try:
        read_until(master, b"$ ", seen)  # the remote prompt: the session is up
        raw = termios.tcgetattr(slave)
        for number, key in enumerate(keys, start=2):
            os.write(master, key)
            if number <= len(keys):  # wait for the next prompt: the line has run

                def waiting(n: int = number) -> bool:
                    return seen.count(b"$ ") < n

                read_while(master, waiting, seen, 15)
        status = proc.wait(30)
        read_while(master, lambda: True, seen, 0.5)  # what was still on its way
        after = termios.tcgetattr(slave)
        lflag = raw[3]  # raw: no local echo, no line editing, Ctrl-C a byte for the remote
        raw_mode = not lflag & (termios.ECHO | termios.ICANON | termios.ISIG)
        restored = after == before and raw_mode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
        os.close(slave)
    return status, bytes(seen), restored


def test_cli_shell_is_interactive_on_a_pty_and_restores_the_terminal(lab: LabContext) -> None:
    async def go() -> tuple[int, bytes, bool]:
        async with running_ssh(lab) as server:
            return await asyncio.to_thread(
                drive_cli, lab, server.port, [b"show one two\r", b"nosuchcmd\r", b"exit\r"]
            )

    status, output, restored = asyncio.run(go())
    assert b"show one two\r\n" in output  # the remote PTY echoed what we typed (no local echo)
    assert b"Arguments: ['one', 'two']\r\n" in output  # the remote shell ran it
    assert b"command not allowed: nosuchcmd" in output  # the remote stderr reached us
    assert status == 127  # the remote shell's exit status (of its last command)
    assert restored  # raw mode while the session ran, the old settings after


def test_cli_shell_without_a_terminal_is_a_usage_error(lab: LabContext) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wirelab", "ssh", "shell", "127.0.0.1", "-p", "1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WIRELAB_HOME": str(lab.state_dir)},
    )
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr
    assert "Traceback" not in done.stderr


# -- byte-exact passthrough, window size and changes, against a recording server -------------


class _Recorder:
    def __init__(self) -> None:
        self.term: str | None = None
        self.sizes: list[tuple[int, int]] = []
        self.received = bytearray()

    async def session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.term = process.term_type
        self.sizes.append(process.term_size[:2])
        while True:
            try:
                data = await process.stdin.read(4096)
            except asyncssh.TerminalSizeChanged as change:
                self.sizes.append((change.width, change.height))
                process.stdout.write(b"<resized>")
                continue
            except asyncssh.SignalReceived as sent:  # the remote PTY's reading of Ctrl-C
                self.received += b"<%s>" % sent.signal.encode()
                process.stdout.write(b"<%s>" % sent.signal.encode())
                continue
            if not data:
                break
            self.received += data
            process.stdout.write(data.upper())
            if b"\x04" in data:  # Ctrl-D, a byte like any other in raw mode
                process.stderr.write(b"bye on stderr\r\n")
                process.exit(7)
                return
        process.exit(0)


class _NoAuth(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False


def test_raw_bytes_window_size_and_resizes_pass_through(tmp_path: Path) -> None:
    recorder = _Recorder()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    master, slave = pty.openpty()
    set_size(slave, 132, 43)
    out = bytearray()

    async def go() -> int:
        server = await asyncssh.create_server(
            _NoAuth,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            process_factory=recorder.session,
            encoding=None,
            line_editor=False,
        )
        port = server.sockets[0].getsockname()[1]
        (tmp_path / "known_hosts").write_text(
            f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}"
        )
        loop = asyncio.get_running_loop()

        def typist() -> None:
            os.write(master, b"hello \x1b[A\t arrow-up and tab")
            read_until(master, b"HELLO \x1b[A\t ARROW-UP AND TAB", out)
            set_size(slave, 90, 20)
            os.kill(os.getpid(), signal.SIGWINCH)
            read_until(master, b"<resized>", out)
            os.write(master, b"\x04")
            read_until(master, b"bye on stderr", out)

        try:
            async with asyncssh.connect(
                "127.0.0.1",
                port,
                username="anyone",
                known_hosts=str(tmp_path / "known_hosts"),
                client_keys=None,
                agent_path=None,
                config=None,
            ) as conn:
                typing = loop.run_in_executor(None, typist)
                status = await interactive_shell(
                    conn, stdin_fd=slave, stdout_fd=slave, stderr_fd=slave, term="xterm-256color"
                )
                await typing
                return status
        finally:
            server.close()
            await server.wait_closed()

    try:
        status = asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)
    assert status == 7
    assert recorder.term == "xterm-256color"
    assert recorder.sizes == [(132, 43), (90, 20)]
    assert bytes(recorder.received) == b"hello \x1b[A\t arrow-up and tab\x04"  # unchanged


def test_interactive_shell_refuses_a_stdin_that_is_not_a_terminal(lab: LabContext) -> None:
    from wirelab.errors import ConfigError

    async def go() -> None:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            read_end, write_end = os.pipe()
            try:
                with pytest.raises(ConfigError, match="needs a terminal"):
                    await interactive_shell(conn, stdin_fd=read_end)
            finally:
                os.close(read_end)
                os.close(write_end)

    asyncio.run(go())
