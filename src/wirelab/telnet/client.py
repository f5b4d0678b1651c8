"""Telnet login automation (F93) with option negotiation (F94), over asyncio streams.

:func:`login` does what the book's ``telnet_login.py`` and ``telnet_codes.py`` do: wait for
``login:``, send the user, wait for ``assword:``, send the password, then expect ``Login
incorrect`` or a ``$`` prompt, and run ``exec COMMAND``, reading until the server closes.
Two differences, both fixes: every wait has a time limit, and a limit that passes is a
failure (:class:`wirelab.errors.Timeout`; the book's ``expect`` returned -1 and the script
carried on as if logged in); options are negotiated by :class:`~wirelab.telnet._core.
Negotiator` (refuse all but TTYPE, and send the terminal type only when asked).

The transcript keeps both directions, the password included: Telnet is cleartext.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from wirelab.errors import (
    ConnectError,
    ConnectionRefused,
    RemoteProtocolError,
    Timeout,
    WirelabError,
)
from wirelab.net.addresses import lab_address
from wirelab.telnet._core import Negotiator

__all__ = ["LoginFailed", "TelnetResult", "login"]

#: The most bytes kept from one session.
MAX_SESSION = 1 << 20


class LoginFailed(WirelabError):
    """The server answered ``Login incorrect``."""


@dataclass
class TelnetResult:
    """What a login session saw and did."""

    output: str
    transcript: list[tuple[str, str]] = field(default_factory=list)
    negotiation: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON document."""
        return {
            "output": self.output,
            "negotiation": self.negotiation,
            "transcript": [{"direction": d, "text": t} for d, t in self.transcript],
        }


class _Session:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, negotiator: Negotiator
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.negotiator = negotiator
        self.buffer = b""
        self.transcript: list[tuple[str, str]] = []
        self.total = 0

    async def _more(self) -> bool:
        chunk = await self.reader.read(4096)
        if not chunk:
            return False
        data, reply = self.negotiator.feed(chunk)
        if reply:
            self.writer.write(reply)
            await self.writer.drain()
        self.total += len(data)
        if self.total > MAX_SESSION:
            raise RemoteProtocolError(f"the server sent more than {MAX_SESSION} bytes")
        if data:
            self.transcript.append(("<", data.decode("utf-8", "replace")))
        self.buffer += data
        return True

    async def expect(self, patterns: list[bytes], timeout: float, what: str) -> tuple[int, bytes]:
        """Wait for the first of ``patterns``; return its index and the text up to its end."""
        compiled = [re.compile(p) for p in patterns]

        async def wait() -> tuple[int, bytes]:
            while True:
                found = [
                    (m.end(), i) for i, c in enumerate(compiled) if (m := c.search(self.buffer))
                ]
                if found:
                    end, index = min(found)
                    before, self.buffer = self.buffer[:end], self.buffer[end:]
                    return index, before
                if not await self._more():
                    raise ConnectError(
                        f"the server closed the connection while we waited for {what}"
                    )

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError as exc:
            raise Timeout(
                f"no {what} within {timeout:g} s (last text: {self.buffer[-60:]!r})"
            ) from exc

    async def send(self, text: str) -> None:
        self.transcript.append((">", text))
        self.writer.write(text.encode("utf-8") + b"\r\n")
        await self.writer.drain()

    async def read_all(self, timeout: float) -> bytes:
        async def wait() -> None:
            while await self._more():
                pass

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError as exc:
            raise Timeout(f"the server did not close the session within {timeout:g} s") from exc
        data, self.buffer = self.buffer, b""
        return data


async def login(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    command: str = "uptime",
    terminal_type: str = "mypython",
    timeout: float = 10.0,
) -> TelnetResult:
    """Log in over Telnet, run ``exec COMMAND`` and return its output and the whole transcript.

    Raises:
        LoginFailed: the server said ``Login incorrect``.
        Timeout: a prompt did not come in time (a failure, never taken for success).
        ConnectError / ConnectionRefused: the network failed.
    """
    negotiator = Negotiator(terminal_type)
    address = lab_address(host) or host
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(f"{host}:{port} refused the connection") from exc
    except TimeoutError as exc:
        raise Timeout(f"no connection to {host}:{port} within {timeout:g} s") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    session = _Session(reader, writer, negotiator)
    try:
        await session.expect([rb"login:"], timeout, "'login:' prompt")
        await session.send(user)
        await session.expect([rb"assword:"], timeout, "'Password:' prompt")
        await session.send(password)
        index, _ = await session.expect(
            [rb"Login incorrect", rb"\$"], timeout, "'Login incorrect' or a '$' prompt"
        )
        if index == 0:
            raise LoginFailed(f"{host}:{port} said 'Login incorrect' for {user}")
        await session.send(f"exec {command}")
        output = await session.read_all(timeout)
    except OSError as exc:
        raise ConnectError(f"telnet session with {host}:{port} failed: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    text = output.decode("utf-8", "replace").replace("\r\n", "\n")
    echoed = f"exec {command}"
    lines = [line for line in text.split("\n") if line.strip() != echoed]
    body = "\n".join(lines).lstrip(" ").strip("\n") + "\n"
    return TelnetResult(body, session.transcript, negotiator.log)
