"""Chapter 16 on the session lab: the tour, the CLI commands, and the lab's pinned key."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import run_wirelab
from wirelab.lab.state import LabState, ServiceView
from wirelab.lab.tour import run_chapters
from wirelab.ssh.tour import CHAPTER


def test_chapter_16_passes(
    lab_ssh: ServiceView, lab_telnet: ServiceView, wirelab_lab: LabState
) -> None:
    results = list(run_chapters([CHAPTER], wirelab_lab))
    failed = [(r.step, r.error) for r in results if not r.ok]
    assert len(results) == len(CHAPTER.steps) == 4
    assert not failed, failed


def test_ssh_run_reports_exit_statuses(lab_ssh: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ssh", "run", "-m", "show a b", "-m", "false", "--json", env=wirelab_env)
    assert done.returncode == 1, done.stderr  # a command failed: the command says so
    results = json.loads(done.stdout)
    assert [r["exit_status"] for r in results] == [0, 1]
    assert results[0]["stdout"] == "Arguments: ['a', 'b']\n"


def test_ssh_hostkey_is_pinned(lab_ssh: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ssh", "hostkey", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pinned"] is True and report["fingerprint"].startswith("ssh-ed25519 SHA256:")


def test_sftp_put_and_get_round_trip(
    lab_ssh: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(200_000)
    (tmp_path / "cli.bin").write_bytes(data)
    (tmp_path / "down").mkdir()
    put = run_wirelab("sftp", "put", str(tmp_path / "cli.bin"), "--json", env=wirelab_env)
    assert put.returncode == 0, put.stderr
    got = run_wirelab(
        "sftp", "get", "cli.bin", "-o", str(tmp_path / "down"), "--json", env=wirelab_env
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "down" / "cli.bin").read_bytes() == data
    listing = run_wirelab("sftp", "ls", "/", "--json", env=wirelab_env)
    assert "cli.bin" in {row["name"] for row in json.loads(listing.stdout)}


def test_sftp_get_of_a_missing_file_is_one_line(
    lab_ssh: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_wirelab("sftp", "get", "../../etc/shadow", "-o", str(tmp_path), env=wirelab_env)
    assert done.returncode == 1
    assert done.stderr == "wirelab: error: get ../../etc/shadow: no such file on the server\n"
    assert not (tmp_path / "shadow").exists()


def test_telnet_login_cli(lab_telnet: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("telnet", "login", "-m", "whoami", "-v", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("brandon\n")
    assert "> 'abc123'" in done.stdout  # -v shows the password as it crossed the wire
    assert "option: received SB TTYPE SEND: sent SB TTYPE IS mypython" in done.stdout


def test_telnet_login_host_user_as_the_book(
    lab_telnet: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("telnet", "login", "ftp.example.com", "brandon", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert "load average" in done.stdout  # exec uptime, as telnet_login.py
    clash = run_wirelab("telnet", "login", "ftp.example.com", "brandon", "-u", "x", env=wirelab_env)
    assert clash.returncode == 1 and "two account names" in clash.stderr
