"""``wirelab web bank serve`` and ``wirelab web bank attack``, run as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import run_wirelab
from wirelab.testing import services_required
from wirelab.web.browser import unavailable_reason


@pytest.mark.parametrize("app", ["insecure", "attacker"])
def test_serve_runs_one_app_until_sigterm(app: str, tmp_path: Path) -> None:
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "web", "bank", "serve", "-p", "0", "--app", app],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        found = re.match(r"listening at 127\.0\.0\.1:(\d+) \(", line)
        assert found, line
        with requests.get(f"http://127.0.0.1:{found.group(1)}/login", timeout=10) as reply:
            status, text = reply.status_code, reply.text
        if app == "insecure":
            assert status == 200 and "deliberately insecure" in text
        else:
            assert status == 404  # the attacker serves pages under /csrf/ and /xss/
            with requests.get(
                f"http://127.0.0.1:{found.group(1)}/csrf/hardened", timeout=10
            ) as reply:  # aimed at the hardened bank's default port
                assert 'action="https://127.0.0.1:10501/pay"' in reply.text
        child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        assert child.wait(30) == 0
        assert rest.strip().endswith("stopped")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stderr is not None:
            child.stderr.close()


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_wirelab("web", "bank", "serve", "-p", str(port), env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"wirelab: error: cannot listen on 127.0.0.1:{port}: ")


def test_serve_refuses_an_unknown_app(tmp_path: Path) -> None:
    done = run_wirelab("web", "bank", "serve", "--app", "nope")
    assert done.returncode == 2


def test_attack_without_a_lab_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1")
    done = run_wirelab("web", "bank", "attack", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "wirelab: error: no lab runs: start one with `wirelab lab up`"
    ]


def test_attack_with_an_unwritable_screenshot_dir_is_one_line(
    wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    # Checked before Chromium starts: no browser is needed to be told.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_wirelab(
        "web",
        "bank",
        "attack",
        "csrf",
        "--bank",
        "insecure",
        "--screenshots",
        str(blocker / "shots"),
        env=wirelab_env,
        timeout=180,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"wirelab: error: cannot write screenshots to {blocker / 'shots'}: Not a directory"
    ]


def test_attack_prints_each_verdict_as_json(wirelab_env: dict[str, str], tmp_path: Path) -> None:
    # One attack on both banks: the proofs themselves are tests/web/test_browser_attacks.py's,
    # and `attack all` (every verdict, in order) is the chapter page's console block.
    why = unavailable_reason()
    if why is not None:
        if services_required():
            pytest.fail(f"the browser must run here: {why}")
        pytest.skip(why)
    done = run_wirelab(
        "web",
        "bank",
        "attack",
        "csrf",
        "--json",
        "--screenshots",
        str(tmp_path / "shots"),
        env=wirelab_env,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    verdicts = json.loads(done.stdout)
    assert [(v["attack"], v["bank"], v["worked"], v["ok"]) for v in verdicts] == [
        ("csrf", "insecure", True, True),
        ("csrf", "hardened", False, True),
    ]
    assert [Path(v["screenshot"]).name for v in verdicts] == [
        "csrf-insecure.png",
        "csrf-hardened.png",
    ]
    assert sorted(p.name for p in (tmp_path / "shots").glob("*.png")) == [
        "csrf-hardened.png",
        "csrf-insecure.png",
    ]
