"""Issue 11 item 8 and issue 10 item 5: the lab's files are its owner's, and its log is bounded.

* ``test_lab_log_rotates_and_stays_bounded``: ``lab.log`` grew ~120 bytes per abusive
  connection and was never rotated;
* ``test_lab_files_are_readable_by_their_owner_only``: ``lab.log`` (0644) and ``tls/``
  (0755) were readable by other users, unlike the rest of the state directory;
* ``test_detach_keeps_its_lines_apart``: "accounts: brandonlab running in the background".
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_wirelab

ROTATE = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from wirelab.lab.logfile import log_to_file

    log_to_file(Path(sys.argv[1]), max_bytes=4000, backups=2)
    log = logging.getLogger("wirelab.abuse")
    for n in range(400):  # ~120 bytes a line, as a refused connection costs
        log.warning("tcp sixteen: 127.0.0.1:%d broke: [Errno 104] Connection reset by peer %s",
                    40000 + n, "x" * 40)
        if n % 50 == 0:
            print(f"a line on stderr {n}", file=sys.stderr, flush=True)
    print("the last line on stderr", file=sys.stderr, flush=True)
    """
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_lab_log_rotates_and_stays_bounded(tmp_path: Path) -> None:
    log = tmp_path / "lab.log"
    log.write_text("an old lab's log\n")
    log.chmod(0o644)  # as an older wirelab left it
    done = subprocess.run(
        [sys.executable, "-c", ROTATE, str(log)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["lab.log", "lab.log.1", "lab.log.2"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 4000 + 200, path
        assert mode(path) == 0o600, path
    # standard error follows the rotation: its last line is in the current file
    assert log.read_text().rstrip().endswith("the last line on stderr")
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 4200


@pytest.fixture
def detached(tmp_path: Path) -> dict[str, str]:
    """A detached lab (TLS and UDP) in a fresh directory, stopped afterwards."""
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path / "lab"), NO_COLOR="1", COLUMNS="200")
    env.pop("WIRELAB_DEBUG", None)
    yield env
    run_wirelab("lab", "down", env=env, timeout=60)


def test_lab_files_are_readable_by_their_owner_only(detached: dict[str, str]) -> None:
    home = Path(detached["WIRELAB_HOME"])
    (home / "tls").mkdir(parents=True)  # as an older wirelab left them
    (home / "tls").chmod(0o755)
    (home / "lab.log").write_text("an old log\n")
    (home / "lab.log").chmod(0o644)
    home.chmod(0o755)
    up = subprocess.run(
        [sys.executable, "-m", "wirelab", "lab", "up", "--detach", "--ephemeral",
         "--service", "tls", "--service", "udp"],
        env=detached, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout
    assert mode(home) == 0o700
    assert mode(home / "lab.log") == 0o600
    assert mode(home / "tls") == 0o700
    for path in home.rglob("*"):
        private = path.suffix in (".log", ".json") or path.name.endswith("-key.pem")
        if path.is_file() and private:
            assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"
    # the detach lines: every line of stdout and stderr is whole, even in one pipe
    lines = up.stdout.splitlines()
    assert "accounts: brandon" in lines, lines
    assert any(line.startswith("lab running in the background (pid ") for line in lines), lines


def test_an_empty_lab_host_is_a_usage_error(tmp_path: Path) -> None:
    done = run_wirelab(
        "lab", "up", "--host", "", env=dict(os.environ, WIRELAB_HOME=str(tmp_path)), timeout=60
    )
    assert done.returncode == 2
    assert "the host is empty" in done.stderr
    assert not (tmp_path / "lab.json").exists()


def test_a_directory_that_holds_other_things_is_not_made_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    (shared / "notes.txt").write_text("someone else's\n")
    (shared / "notes.txt").chmod(0o644)
    done = run_wirelab(
        "lab", "up", "--ephemeral", "--service", "udp", "--state-dir", str(shared),
        env=dict(os.environ, WIRELAB_HOME=str(tmp_path / "home")), timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"wirelab: error: {shared} holds other files and is not a lab directory; "
        "give a new or empty one"
    )
    assert mode(shared) == 0o755 and mode(shared / "notes.txt") == 0o644
