"""Rootless: an unprivileged user builds, uses and removes a playground in a user namespace.

The root test process runs the CLI as ``nobody`` (``setpriv``): ``up --detach`` starts the
controller under ``unshare --user --map-root-user --mount --net``, which mounts private
tmpfs on ``/run/netns`` and ``/etc/netns`` and builds the twelve hosts inside; ``exec``,
``tour`` and ``down`` enter with ``nsenter``. Nothing of it is visible in the machine's own
``/run/netns``, and when it ends no process of its user namespace is left.

Where the interpreter of the test run lives where ``nobody`` cannot reach it (a Python under
``/root``), the same code runs on the system's Python of the same version with this
checkout's ``src`` and the environment's site-packages on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wirelab
from tests.playground.conftest import namespaces_of, require_netns
from wirelab.playground.netns import rootless_blocker

pytestmark = pytest.mark.netns

NOBODY = 65534


def _as_nobody(python: str, env: dict[str, str]) -> list[str]:
    return [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        "env", *(f"{k}={v}" for k, v in env.items()), python,
    ]  # fmt: skip


def _python_for_nobody(env: dict[str, str]) -> str | None:
    """An interpreter ``nobody`` can run and start children with (sys.executable first)."""
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"]
    probe = (
        "import subprocess, sys, wirelab; subprocess.run([sys.executable, '-c', ''], check=True)"
    )
    for python in candidates:
        if not Path(python).exists():
            continue
        done = subprocess.run(
            [*_as_nobody(python, env), "-c", probe], capture_output=True, timeout=60, check=False
        )
        if done.returncode == 0:
            return python
    return None


class Nobody:
    """Runs ``wirelab`` as nobody, with a state directory nobody owns."""

    def __init__(self, python: str, env: dict[str, str], home: Path) -> None:
        self.python, self.env, self.home = python, env, home
        self.state = ["--state-dir", str(home / "state")]

    def wirelab(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_as_nobody(self.python, self.env), "-m", "wirelab", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self) -> dict[str, object]:
        done = self.wirelab("playground", "up", "--detach", *self.state)
        assert done.returncode == 0, done.stderr[-800:]
        state: dict[str, object] = json.loads((self.home / "state" / "playground.json").read_text())
        return state


@pytest.fixture
def nobody() -> Iterator[Nobody]:
    require_netns()
    why = rootless_blocker()
    if why is not None:
        pytest.skip(f"rootless cannot work here: {why}")
    if shutil.which("setpriv") is None:
        pytest.skip("util-linux's setpriv is needed to run the CLI as nobody")
    home = Path(tempfile.mkdtemp(prefix="wirelab-rootless-"))
    os.chown(home, NOBODY, NOBODY)
    src = str(Path(wirelab.__file__).resolve().parents[1])
    env = {
        "HOME": str(home),
        "WIRELAB_HOME": str(home / "lab"),
        "PYTHONPATH": os.pathsep.join([src, sysconfig.get_paths()["purelib"]]),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    python = _python_for_nobody(env)
    if python is None:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip("no Python interpreter here that nobody may run")
    try:
        yield Nobody(python, env, home)
    finally:
        state = home / "state" / "playground.json"
        if state.exists():  # a failed test: stop its controller, the reaper does the rest
            pid = int(json.loads(state.read_text())["pid"])
            userns = _userns(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if userns:
                _wait_empty(userns)
        shutil.rmtree(home, ignore_errors=True)


def _userns(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}/ns/user").st_ino
    except OSError:
        return 0


def _in_userns(inode: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "user").st_ino == inode:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_empty(inode: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _in_userns(inode)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_nobody_builds_uses_and_removes_a_playground(nobody: Nobody) -> None:
    started = time.monotonic()
    state = nobody.up()
    print(f"rootless up --detach as nobody: {time.monotonic() - started:.2f} s")
    prefix, pid = str(state["prefix"]), int(str(state["pid"]))
    assert state["rootless"] is True
    assert os.stat(f"/proc/{pid}").st_uid == NOBODY
    userns = _userns(pid)
    assert userns != os.stat("/proc/self/ns/user").st_ino  # a user namespace of its own
    assert namespaces_of(prefix) == []  # its /run/netns is private: the machine sees none

    shown = nobody.wirelab(
        "playground", "exec", *nobody.state, "h1", "--", "ip", "-4", "-o", "addr"
    )
    assert shown.returncode == 0, shown.stderr[-500:]
    assert "192.168.1.11/24" in shown.stdout
    status = nobody.wirelab("playground", "status", "--json", *nobody.state)
    assert status.returncode == 0, status.stderr[-500:]
    assert json.loads(status.stdout)["nodes"]["www"]["interfaces"]["eth0"]["addresses"] == [
        "10.130.1.4/24"
    ]
    link = nobody.wirelab("playground", "link", *nobody.state, "h1", "modemA", "--loss", "5%")
    assert link.returncode == 0, link.stderr[-500:]  # nftables in the user's own namespaces
    rules = nobody.wirelab(
        "playground", "exec", *nobody.state, "h1", "--", "nft", "list", "ruleset"
    )
    assert "numgen random mod 1000 < 50 drop" in rules.stdout, rules.stderr[-300:]
    cleared = nobody.wirelab("playground", "link", *nobody.state, "h1", "modemA", "--clear")
    assert cleared.returncode == 0, cleared.stderr[-500:]
    steps = _tour(nobody)
    assert [s["title"] for s in steps] == [
        "the server sees the modem's address",
        "the path MTU is 1500",
        "broadcasts stay on homeA",
        "the hops from h1 to www",
    ]
    assert all(s["ok"] for s in steps), [(s["title"], s["why"]) for s in steps]
    # servers on the book's ports below 1024 run too (root of the user namespace may bind)
    mail = nobody.wirelab("playground", "exec", *nobody.state, "mail", "--", "ss", "-Hltn")
    assert ":25 " in mail.stdout and ":993 " in mail.stdout, mail.stdout

    inside = _in_userns(userns)
    assert len(inside) >= 5  # controller, reaper, DNS, UDP, zen, lab services ...
    down = nobody.wirelab("playground", "down", *nobody.state)
    assert down.returncode == 0, down.stderr[-500:]
    assert f"playground {prefix} removed" in down.stdout
    assert _wait_empty(userns) == []
    assert not (nobody.home / "state" / "playground" / prefix).exists()


def _tour(nobody: Nobody) -> list[dict[str, object]]:
    """`wirelab tour --playground --chapter 2 --json` as nobody, on the running playground
    (the tour finds it in $WIRELAB_HOME's state)."""
    env = dict(nobody.env, WIRELAB_HOME=str(nobody.home / "state"))
    done = subprocess.run(
        [*_as_nobody(nobody.python, env), "-m", "wirelab", "tour", "--playground", "--chapter",
         "2", "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    steps: list[dict[str, object]] = json.loads(done.stdout)["steps"]
    return steps


def test_killed_rootless_controller_leaves_nothing(nobody: Nobody) -> None:
    """SIGKILL the rootless controller: its reaper (inside the user namespace) removes every
    process, and with the last of them the namespaces go."""
    state = nobody.up()
    pid = int(str(state["pid"]))
    userns = _userns(pid)
    assert len(_in_userns(userns)) >= 5
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    assert _wait_empty(userns) == []
    print(f"rootless reaper cleaned up {time.monotonic() - started:.2f} s after SIGKILL")
    assert not (nobody.home / "state" / "playground" / str(state["prefix"])).exists()


def test_rootless_blocker_names_what_is_missing(tmp_path: Path) -> None:
    """Where neither root nor rootless can work, the reason is one line."""
    off = tmp_path / "max_user_namespaces"
    off.write_text("0\n")
    assert rootless_blocker(off) == f"unprivileged user namespaces are off here ({off} is 0)"
    on = tmp_path / "on"
    on.write_text("1000\n")
    missing = tmp_path / "no-such-dir"
    assert rootless_blocker(on, [missing]) == (
        f"rootless needs {missing} to exist (once, as root: mkdir -p {missing})"
    )
    assert rootless_blocker(on, [tmp_path]) is None


def test_what_needs_root_says_so_in_one_line(nobody: Nobody) -> None:
    """As nobody: `up --real`, `down --stale` and a tour with no playground running each fail
    with one line (exit 1) that says what to do, and build nothing."""
    for args, message in (
        (
            ("playground", "up", "--real", *nobody.state),
            "--real needs root: its daemons drop privileges to users a rootless user "
            "namespace does not map",
        ),
        (
            ("playground", "down", "--stale", *nobody.state),
            "this needs root (run it with sudo); as an unprivileged user, start a rootless "
            "playground with `wirelab playground up --detach` first",
        ),
        (
            ("playground", "tour", *nobody.state),
            "this needs root (run it with sudo); as an unprivileged user, start a rootless "
            "playground with `wirelab playground up --detach` first",
        ),
    ):
        done = nobody.wirelab(*args)
        assert done.returncode == 1, (args, done.stderr[-500:])
        assert done.stderr.strip().splitlines() == [f"wirelab: error: {message}"], args
    assert not (nobody.home / "state" / "playground.json").exists()
