"""``wirelab ftp`` against the session lab, as a user runs it."""

from __future__ import annotations

import ftplib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_wirelab
from wirelab.lab.state import LabState, ServiceView


def test_client_shows_banner_and_directory(
    lab_ftp: ServiceView, wirelab_env: dict[str, str]
) -> None:
    done = run_wirelab("ftp", "client", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert "Welcome: 220 " in done.stdout and "Current working directory: /" in done.stdout


def test_client_over_implicit_ftps(lab_ftp: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ftp", "client", "--tls", "implicit", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cwd"] == "/"


def test_ls_names_and_long(lab_ftp: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ftp", "ls", "/pub/linux/kernel/v1.0", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["linux-1.0.tar.gz", "patch8.gz"]
    done = run_wirelab("ftp", "ls", "/pub/academic/astronomy", "--long", env=wirelab_env)
    assert done.returncode == 0 and "catalogs" in done.stdout


def test_get_put_round_trip_over_explicit_ftps(
    lab_ftp: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "cli-upload.bin"
    source.write_bytes(b"\x00\xff" * 5000)
    put = ("ftp", "put", str(source), "-u", "brandon", "--tls", "explicit", "--force", "--json")
    done = run_wirelab(*put, env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == 10000
    back = tmp_path / "back.bin"
    get = ("ftp", "get", "cli-upload.bin", str(back), "-u", "brandon", "--tls", "explicit")
    done = run_wirelab(*get, env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert back.read_bytes() == source.read_bytes()
    again = run_wirelab(*get, env=wirelab_env)
    assert again.returncode == 1
    assert again.stderr.startswith("wirelab: error: refusing to overwrite")


def test_anonymous_put_is_refused_in_one_line(
    lab_ftp: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "x.txt"
    source.write_text("x")
    done = run_wirelab("ftp", "put", str(source), "-u", "anonymous", env=wirelab_env)
    assert done.returncode == 1
    assert "550" in done.stderr and "Traceback" not in done.stderr


def test_get_ascii_and_empty_file(
    lab_ftp: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_wirelab(
        "ftp",
        "get",
        "/pub/linux/kernel/README",
        str(tmp_path / "README"),
        "--ascii",
        env=wirelab_env,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "README").read_text().startswith("Linux kernel release 1.0\n")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    up = run_wirelab("ftp", "put", str(empty), "--force", env=wirelab_env)
    assert up.returncode == 0, up.stderr
    down = run_wirelab(
        "ftp", "get", "empty.bin", str(tmp_path / "e2"), "-u", "brandon", env=wirelab_env
    )
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "e2").read_bytes() == b""


def test_mirror_down_skips_the_symlink_loop(
    lab_ftp: ServiceView, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_wirelab(
        "ftp",
        "mirror",
        "/pub/linux/kernel/Historic/old-versions",
        str(tmp_path / "old"),
        "--json",
        env=wirelab_env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] == 5 and any("loop" in s for s in report["skipped"])


def test_bad_tls_mode_is_a_usage_error(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ftp", "client", "--tls", "maybe", env=wirelab_env)
    assert done.returncode == 2


def test_ls_facts_reads_mlsd(lab_ftp: ServiceView, wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("ftp", "ls", "/pub/linux/kernel", "--facts", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    kinds = {e["name"]: e["kind"] for e in json.loads(done.stdout)}
    assert kinds["README"] == "file" and kinds["v1.0"] == "dir"


def test_get_resume_completes_a_partial_file(
    lab_ftp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    remote = "/pub/linux/kernel/v1.0/linux-1.0.tar.gz"
    whole = (Path(wirelab_lab.directory) / "ftp/anonymous" / remote.lstrip("/")).read_bytes()
    local = tmp_path / "linux.tgz"
    (tmp_path / "linux.tgz.part").write_bytes(whole[:123457])  # what a cut transfer left
    done = run_wirelab("ftp", "get", remote, str(local), "--resume", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed_from"] == 123457
    assert local.read_bytes() == whole and not (tmp_path / "linux.tgz.part").exists()


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "WIRELAB_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "ftp", "serve", "-p", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+) \(FTP, explicit FTPS\)", line)
        assert match, line
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", int(match.group(1)), timeout=10)
        ftp.login()
        assert "patch8.gz" in ftp.nlst("/pub/linux/kernel/v1.0")
        ftp.quit()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
