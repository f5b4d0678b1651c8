"""The lab SSH server and our clients (F95-F98), with the host key pinned and bad input."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import time
from pathlib import Path

import asyncssh
import pytest

from tests.ssh.conftest import home, running_ssh, target
from wirelab.errors import WirelabError
from wirelab.lab.service import LabContext
from wirelab.ssh.client import (
    AuthenticationFailed,
    HostKeyRefused,
    connect,
    run_commands,
    run_concurrently,
    sftp_get,
    sftp_list,
    sftp_put,
    shell_transcript,
)
from wirelab.ssh.keys import known_hosts_file


def test_exec_gives_stdout_stderr_and_exit_status_per_channel(lab: LabContext) -> None:
    async def go() -> list[tuple[str, str, int | None]]:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            results = await run_commands(
                conn, ["show a b", 'echo "Hello, world!"', "false", "cat /etc/passwd", "bash"]
            )
            return [(r.stdout, r.stderr, r.exit_status) for r in results]

    got = asyncio.run(go())
    assert got[0] == ("Arguments: ['a', 'b']\n", "", 0)
    assert got[1] == ('"Hello, world!"\n', "", 0)
    assert got[2] == ("", "", 1)
    assert got[3] == ("", "shell: absolute path refused: /etc/passwd\n", 126)
    assert got[4][2] == 127 and "not allowed" in got[4][1]


def test_password_login_works_and_a_wrong_one_fails(lab: LabContext) -> None:
    async def go() -> None:
        async with running_ssh(lab, failure_delay=0.05) as server:
            async with connect(target(lab, server.port, key=False, password="abc123")) as conn:
                assert (await run_commands(conn, ["whoami"]))[0].stdout == "brandon\n"
            with pytest.raises(AuthenticationFailed):
                async with connect(target(lab, server.port, key=False, password="nope")):
                    pass
            with pytest.raises(AuthenticationFailed):
                async with connect(
                    target(lab, server.port, key=False, password="abc123", user="mallory")
                ):
                    pass

    asyncio.run(go())


def test_failed_logins_are_slowed_and_logged_without_the_password(
    lab: LabContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wirelab.ssh.server")

    async def go() -> float:
        async with running_ssh(lab, failure_delay=0.4) as server:
            start = time.monotonic()
            with pytest.raises(AuthenticationFailed):
                async with connect(target(lab, server.port, key=False, password="hunter2-secret")):
                    pass
            return time.monotonic() - start

    elapsed = asyncio.run(go())
    assert elapsed >= 0.4
    failures = [r.getMessage() for r in caplog.records if "failed password" in r.getMessage()]
    assert failures and "'brandon'" in failures[0] and "127.0.0.1" in failures[0]
    assert not any("hunter2-secret" in r.getMessage() for r in caplog.records)


def test_the_host_key_is_kept_private_and_the_same_across_restarts(lab: LabContext) -> None:
    async def fingerprint() -> str:
        async with running_ssh(lab) as server:
            key = await asyncssh.get_server_host_key("127.0.0.1", server.port)
            assert key is not None
            return str(key.get_fingerprint())

    first, second = asyncio.run(fingerprint()), asyncio.run(fingerprint())
    assert first == second
    key_file = lab.state_dir / "ssh" / "ssh_host_ed25519_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((lab.state_dir / "ssh" / "keys" / "brandon").stat().st_mode) == 0o600


def test_a_changed_host_key_is_refused_with_its_fingerprint(lab: LabContext) -> None:
    async def go() -> str:
        async with running_ssh(lab) as server:
            other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            known_hosts_file(lab.state_dir).write_text(f"[127.0.0.1]:{server.port} {other}")
            with pytest.raises(HostKeyRefused) as refused:
                async with connect(target(lab, server.port)):
                    pass
            key = await asyncssh.get_server_host_key("127.0.0.1", server.port)
            assert key is not None
            assert key.get_fingerprint("sha256") in str(refused.value)
            return str(refused.value)

    assert "refusing" in asyncio.run(go())


def test_an_unknown_host_is_refused(lab: LabContext) -> None:
    async def go() -> None:
        async with running_ssh(lab) as server:
            known_hosts_file(lab.state_dir).write_text("")
            with pytest.raises(HostKeyRefused, match="not pinned"):
                async with connect(target(lab, server.port)):
                    pass

    asyncio.run(go())


def test_the_pty_shell_transcript_shows_prompts_and_echoes(lab: LabContext) -> None:
    async def go() -> str:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            return await shell_transcript(conn, ["echo Hello, world", "exit"])

    transcript = asyncio.run(go())
    assert transcript.count("$ ") >= 2  # a prompt before each line
    assert "echo Hello, world\r\n" in transcript  # the PTY's echo of what we typed
    assert "Hello, world\r\n" in transcript.replace("echo Hello, world\r\n", "")


def test_channels_over_one_connection_interleave(lab: LabContext) -> None:
    async def go() -> list[tuple[int, str, float]]:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            return await run_concurrently(conn, ["tick 0.3 One Two Three", "tick 0.45 A B C"])

    arrived = asyncio.run(go())
    assert sorted(line for _, line, _ in arrived) == sorted(["One", "Two", "Three", "A", "B", "C"])
    channels = [index for index, _, _ in arrived]
    assert channels != sorted(channels), f"no interleaving: {arrived}"
    assert arrived[-1][2] < 2.0  # concurrent: about 1.35 s, not 0.9 + 1.35


def test_sftp_round_trip_is_byte_identical_and_empty_files_work(
    lab: LabContext, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    seen: list[tuple[int, int]] = []

    async def go() -> list[dict[str, object]]:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            await sftp_put(conn, source, "data.bin")
            await sftp_put(conn, tmp_path / "empty", "empty")
            await sftp_get(
                conn,
                "data.bin",
                tmp_path / "back.bin",
                progress=lambda _n, done, total: seen.append((done, total)),
            )
            await sftp_get(
                conn,
                "/empty",
                tmp_path / "empty.copy",
                progress=lambda _n, done, total: seen.append((done, total)),
            )
            return await sftp_list(conn, "/")

    listing = asyncio.run(go())
    assert (tmp_path / "back.bin").read_bytes() == data
    assert (home(lab) / "data.bin").read_bytes() == data
    assert (tmp_path / "empty.copy").read_bytes() == b""
    assert seen[-1] == (0, 0) and (len(data), len(data)) in seen
    assert {"data.bin", "empty", "etc", "README"} <= {str(r["name"]) for r in listing}


def test_a_cut_download_is_completed_by_resume(lab: LabContext, tmp_path: Path) -> None:
    data = os.urandom(1024 * 1024)
    local = tmp_path / "big"
    local.write_bytes(data[:300_000])  # what a transfer cut midway leaves

    async def go() -> int:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            (home(lab) / "big").write_bytes(data)
            return await sftp_get(conn, "big", local, resume=True)

    assert asyncio.run(go()) == len(data) - 300_000
    assert local.read_bytes() == data


def test_a_cut_upload_is_completed_by_resume(lab: LabContext, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    (tmp_path / "up").write_bytes(data)

    async def go() -> int:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            (home(lab) / "up").write_bytes(data[:123_456])
            return await sftp_put(conn, tmp_path / "up", "up", resume=True)

    assert asyncio.run(go()) == len(data) - 123_456
    assert (home(lab) / "up").read_bytes() == data


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "escape/passwd"])
def test_sftp_refuses_paths_out_of_the_home(lab: LabContext, tmp_path: Path, path: str) -> None:
    from wirelab.errors import ConfigError

    async def go() -> None:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            os.symlink("/etc", home(lab) / "escape")
            with pytest.raises(ConfigError):
                await sftp_get(conn, path, tmp_path / "stolen")

    asyncio.run(go())
    assert not (tmp_path / "stolen").exists() or b"root:" not in (tmp_path / "stolen").read_bytes()


def test_sftp_refuses_to_make_links(lab: LabContext) -> None:
    async def go() -> None:
        async with (
            running_ssh(lab) as server,
            connect(target(lab, server.port)) as conn,
            conn.start_sftp_client() as sftp,
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.symlink("/etc/passwd", "link")
            with pytest.raises(asyncssh.SFTPError):
                await sftp.get("/../../etc/passwd", os.devnull)

    asyncio.run(go())
    assert not (home(lab) / "link").exists()


def test_an_idle_shell_is_closed(lab: LabContext) -> None:
    async def go() -> str:
        async with (
            running_ssh(lab, idle_timeout=0.5) as server,
            connect(target(lab, server.port)) as conn,
            conn.create_process() as process,
        ):
            out = await asyncio.wait_for(process.stdout.read(), 5)
            err = await process.stderr.read()
            return str(out) + str(err)

    assert "idle for 0.5 s" in asyncio.run(go())


def test_a_peer_that_never_logs_in_is_cut_at_the_login_timeout(lab: LabContext) -> None:
    async def go() -> tuple[bytes, float]:
        async with running_ssh(lab, login_timeout=0.5) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            start = time.monotonic()
            banner = await reader.readline()
            rest = await asyncio.wait_for(reader.read(), 5)  # EOF when the server gives up
            writer.close()
            await writer.wait_closed()
            assert len(rest) < 4096
            return banner, time.monotonic() - start

    banner, waited = asyncio.run(go())
    assert banner.startswith(b"SSH-2.0-wirelab")
    assert waited < 3


def test_connections_over_the_cap_are_closed(lab: LabContext) -> None:
    async def go() -> None:
        async with (
            running_ssh(lab, max_connections=1) as server,
            connect(target(lab, server.port)) as conn,
        ):
            with pytest.raises(WirelabError):
                async with connect(target(lab, server.port, timeout=3)):
                    pass
            assert (await run_commands(conn, ["whoami"]))[0].stdout == "brandon\n"

    asyncio.run(go())


def test_a_connection_made_while_the_server_closes_does_not_leak(lab: LabContext) -> None:
    async def go() -> None:
        async with running_ssh(lab) as server:
            sock = socket.create_connection(("127.0.0.1", server.port))
        sock.close()

    asyncio.run(go())


def test_at_the_cap_silent_connections_make_room_for_a_user(lab: LabContext) -> None:
    async def go() -> str:
        async with running_ssh(lab, max_connections=3) as server:
            silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
            try:
                async with connect(target(lab, server.port, timeout=5)) as conn:
                    return (await run_commands(conn, ["whoami"]))[0].stdout
            finally:
                for _, writer in silent:
                    writer.close()

    assert asyncio.run(go()) == "brandon\n"


def test_port_forwarding_is_refused(lab: LabContext) -> None:
    async def go() -> None:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", server.port)
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", server.port)

    asyncio.run(go())


def test_uploads_stop_at_the_home_quota(lab: LabContext, tmp_path: Path) -> None:
    from wirelab.errors import ProtocolError

    (tmp_path / "big").write_bytes(b"x" * 300_000)

    async def go() -> None:
        async with (
            running_ssh(lab, home_quota=200_000) as server,
            connect(target(lab, server.port)) as conn,
        ):
            with pytest.raises(ProtocolError, match="quota"):
                await sftp_put(conn, tmp_path / "big", "big")

    asyncio.run(go())
    assert (home(lab) / "big").stat().st_size <= 200_000


def test_a_command_writing_too_much_is_cut_by_the_client(
    lab: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wirelab.errors import RemoteProtocolError
    from wirelab.ssh import client

    monkeypatch.setattr(client, "MAX_OUTPUT", 10_000)

    async def go() -> None:
        async with running_ssh(lab) as server, connect(target(lab, server.port)) as conn:
            (home(lab) / "big").write_bytes(b"x" * 50_000)
            with pytest.raises(RemoteProtocolError, match="more than 10000"):
                await run_commands(conn, ["cat big"])
            assert (await run_commands(conn, ["whoami"]))[0].stdout == "brandon\n"

    asyncio.run(go())
