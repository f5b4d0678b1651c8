"""Telnet (F93, F94): the lab server's login and shell, our client's negotiation and failures."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from wirelab.errors import Timeout
from wirelab.lab.service import LabContext
from wirelab.telnet._core import DO, DONT, IAC, SB, SE, TTYPE, WILL, WONT, Negotiator
from wirelab.telnet.client import LoginFailed, login
from wirelab.telnet.server import TelnetListener, open_telnet_server
from wirelab.telnet.service import lab_telnet_settings


@pytest.fixture
def lab(tmp_path: Path) -> LabContext:
    return LabContext(state_dir=tmp_path / "lab", ephemeral=True)


@asynccontextmanager
async def running_telnet(lab: LabContext, **limits: Any) -> AsyncIterator[TelnetListener]:
    settings = dataclasses.replace(lab_telnet_settings(lab), **limits)
    listener = await open_telnet_server("127.0.0.1", 0, settings)
    try:
        yield listener
    finally:
        await listener.aclose()


# -- the negotiation core ---------------------------------------------------------------------


def test_the_negotiator_refuses_every_option_but_ttype() -> None:
    neg = Negotiator("mypython")
    data, reply = neg.feed(bytes([IAC, WILL, 1, IAC, DO, 31, IAC, DO, TTYPE]) + b"login: ")
    assert data == b"login: "
    assert reply == bytes([IAC, DONT, 1, IAC, WONT, 31, IAC, WILL, TTYPE])
    assert neg.log == [
        "received WILL ECHO: refused with DONT ECHO",
        "received DO NAWS: refused with WONT NAWS",
        "received DO TTYPE: sent WILL TTYPE",
    ]


def test_the_terminal_type_goes_only_when_asked() -> None:
    neg = Negotiator("mypython")
    assert neg.feed(bytes([IAC, SB, TTYPE, 1, IAC, SE]))[1] == b""  # SEND before DO: ignored
    neg.feed(bytes([IAC, DO, TTYPE]))
    reply = neg.feed(bytes([IAC, SB, TTYPE, 1, IAC, SE]))[1]
    assert reply == bytes([IAC, SB, TTYPE, 0]) + b"mypython" + bytes([IAC, SE])


def test_negotiation_split_across_reads_and_escaped_iac() -> None:
    neg = Negotiator()
    stream = bytes([IAC, DO, TTYPE, IAC, IAC]) + b"x" + bytes([IAC, SB, TTYPE, 1, IAC, SE])
    data, reply = b"", b""
    for i in range(len(stream)):
        d, r = neg.feed(stream[i : i + 1])
        data, reply = data + d, reply + r
    assert data == bytes([IAC]) + b"x"
    assert reply.endswith(b"mypython" + bytes([IAC, SE]))


def test_refusals_do_not_loop() -> None:
    neg = Negotiator()
    assert neg.feed(bytes([IAC, DONT, 1, IAC, WONT, 3]))[1] == b""


def test_a_huge_subnegotiation_is_dropped() -> None:
    neg = Negotiator()
    neg.feed(bytes([IAC, DO, TTYPE]))
    data, reply = neg.feed(bytes([IAC, SB, TTYPE, 1]) + b"x" * 5000 + bytes([IAC, SE]) + b"ok")
    assert data == b"ok" and reply == b""


# -- the server and the client ----------------------------------------------------------------


def test_login_runs_a_command_and_shows_the_password_in_cleartext(lab: LabContext) -> None:
    async def go() -> Any:
        async with running_telnet(lab) as server:
            return await login("127.0.0.1", server.port, "brandon", "abc123", command="show a b")

    result = asyncio.run(go())
    assert result.output == "Arguments: ['a', 'b']\n"
    assert (">", "abc123") in result.transcript  # cleartext: the password crosses as it is
    assert "received SB TTYPE SEND: sent SB TTYPE IS mypython" in result.negotiation
    assert any("refused" in line for line in result.negotiation)
    received = "".join(text for d, text in result.transcript if d == "<")
    assert "Terminal type: mypython." in received  # the server heard our answer


def test_a_wrong_password_is_a_failure_slowed_and_logged_without_it(
    lab: LabContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.telnet.server")

    async def go() -> float:
        async with running_telnet(lab, failure_delay=0.4) as server:
            start = time.monotonic()
            with pytest.raises(LoginFailed):
                await login("127.0.0.1", server.port, "brandon", "s3cret-guess", timeout=5)
            return time.monotonic() - start

    assert asyncio.run(go()) >= 0.4
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed login for 'brandon'" in m for m in messages)
    assert not any("s3cret-guess" in m for m in messages)


def test_three_failures_close_the_connection(lab: LabContext) -> None:
    async def go() -> bytes:
        async with running_telnet(lab, failure_delay=0.01) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"x\r\ny\r\n" * 3)
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await writer.wait_closed()
            return data

    data = asyncio.run(go())
    assert data.count(b"Login incorrect") == 3 and b"Too many failures" in data


def test_a_prompt_that_never_comes_is_a_failure(raw_server: Any) -> None:
    def silent(conn: Any) -> None:
        conn.sendall(b"Welcome, but no prompt\r\n")
        time.sleep(1.0)

    host, port = raw_server(silent)
    with pytest.raises(Timeout, match=r"no .login:. prompt within 0\.3 s"):
        asyncio.run(login(host, port, "brandon", "abc123", timeout=0.3))


def test_no_dollar_prompt_after_the_password_is_a_failure(raw_server: Any) -> None:
    def stuck(conn: Any) -> None:
        conn.sendall(b"login: ")
        conn.recv(100)
        conn.sendall(b"Password: ")
        conn.recv(100)
        time.sleep(1.0)

    host, port = raw_server(stuck)
    with pytest.raises(Timeout, match="'Login incorrect' or a '\\$' prompt"):
        asyncio.run(login(host, port, "brandon", "abc123", timeout=0.4))


def test_an_idle_session_is_closed(lab: LabContext) -> None:
    async def go() -> bytes:
        async with running_telnet(lab, idle_timeout=0.5) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"brandon\r\nabc123\r\n")
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await writer.wait_closed()
            return data

    assert b"idle for 0.5 s, closing" in asyncio.run(go())


def test_the_shell_refuses_metacharacters_over_telnet(lab: LabContext) -> None:
    async def go() -> str:
        async with running_telnet(lab) as server:
            return (
                await login("127.0.0.1", server.port, "brandon", "abc123", command="echo $TERM")
            ).output

    assert "special character '$' refused" in asyncio.run(go())


def test_at_the_cap_silent_sessions_make_room_for_a_user(lab: LabContext) -> None:
    async def go() -> str:
        async with running_telnet(lab, max_connections=2) as server:
            silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
            await asyncio.sleep(0.8)  # past the negotiation wait: they sit at the login prompt
            try:
                result = await login("127.0.0.1", server.port, "brandon", "abc123", command="pwd")
                return result.output
            finally:
                for _, writer in silent:
                    writer.close()

    assert asyncio.run(go()) == "/\n"


def test_a_client_that_never_logs_in_is_cut_at_the_login_timeout(lab: LabContext) -> None:
    async def go() -> tuple[bytes, float]:
        async with running_telnet(lab, login_timeout=0.5) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            start = time.monotonic()
            data = await asyncio.wait_for(reader.read(), 10)  # EOF when the server gives up
            writer.close()
            await writer.wait_closed()
            return data, time.monotonic() - start

    data, waited = asyncio.run(go())
    assert b"login: " in data and waited < 3
