"""Chapter 16 in the tour: a Telnet login, a command over SSH, SFTP, two channels at once."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from wirelab.lab.tour import Chapter, TourContext
from wirelab.ssh import client as ssh
from wirelab.ssh.keys import client_key_file, known_hosts_file

CHAPTER = Chapter(
    16,
    "Telnet and SSH",
    "A shell with no special characters, Telnet in cleartext, SSH with a pinned host key.",
)


def _target(ctx: TourContext) -> ssh.SSHTarget:
    ep = ctx.lab.endpoint("ssh")
    lab_dir = Path(ctx.lab.directory)
    user = ctx.lab.account.user
    return ssh.SSHTarget(
        ep.address,
        ep.port,
        user,
        None,
        (client_key_file(lab_dir, user),),
        known_hosts_file(lab_dir),
        15.0,
    )


@CHAPTER.step("Telnet: automated login with prompt matching; the password crosses in cleartext")
def _telnet(ctx: TourContext) -> None:
    from wirelab.telnet.client import login

    ep = ctx.lab.endpoint("telnet")
    account = ctx.lab.account
    result = asyncio.run(
        login(ep.address, ep.port, account.user, account.password, command="show a b")
    )
    sent = [text for direction, text in result.transcript if direction == ">"]
    ctx.say(f"we sent, in the clear: {sent}")
    ctx.say(f"negotiation: {'; '.join(result.negotiation[:3])} ...")
    ctx.say(f"output of 'exec show a b': {result.output.strip()}")
    ctx.check(result.output == "Arguments: ['a', 'b']\n", f"unexpected output {result.output!r}")
    ctx.check(account.password in sent, "the transcript lost the password")


@CHAPTER.step("SSH: one command per channel, with stdout, stderr and exit status")
def _commands(ctx: TourContext) -> None:
    async def go() -> list[ssh.CommandResult]:
        async with ssh.connect(_target(ctx)) as conn:
            return await ssh.run_commands(conn, ['echo "Hello, world!"', "cat /etc/passwd"])

    hello, refused = asyncio.run(go())
    ctx.say(f"{hello.command!r}: stdout {hello.stdout!r}, exit status {hello.exit_status}")
    ctx.say(f"{refused.command!r}: stderr {refused.stderr!r}, exit status {refused.exit_status}")
    ctx.check(hello.stdout == '"Hello, world!"\n' and hello.exit_status == 0, "echo failed")
    ctx.check(refused.exit_status == 126, "the lab shell read a file outside the home")


@CHAPTER.step("SFTP: an upload and a download, byte-identical, in the account's lab home")
def _sftp(ctx: TourContext) -> None:
    data = os.urandom(256 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        source, back = Path(tmp) / "tour.bin", Path(tmp) / "back.bin"
        source.write_bytes(data)

        async def go() -> int:
            async with ssh.connect(_target(ctx)) as conn:
                await ssh.sftp_put(conn, source, "tour.bin")
                return await ssh.sftp_get(conn, "tour.bin", back)

        got = asyncio.run(go())
        same = back.read_bytes() == data
    ctx.say(f"put and got {got} bytes back: {'identical' if same else 'DIFFERENT'}")
    ctx.check(same, "the SFTP round trip changed the bytes")


@CHAPTER.step("two channels over one connection: their lines interleave (One A Two Three B C)")
def _channels(ctx: TourContext) -> None:
    async def go() -> list[tuple[int, str, float]]:
        async with ssh.connect(_target(ctx)) as conn:
            return await ssh.run_concurrently(conn, ssh.CONCURRENT_COMMANDS)

    arrived = asyncio.run(go())
    ctx.say("  ".join(f"{line}@{seconds:.1f}s" for _, line, seconds in arrived))
    channels = [index for index, _, _ in arrived]
    ctx.check(len(arrived) == 6 and channels != sorted(channels), "the channels did not interleave")


CHAPTERS = (CHAPTER,)
