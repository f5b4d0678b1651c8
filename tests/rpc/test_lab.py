"""The rpc lab service, its CLI commands and tour chapter, against the session lab."""

from __future__ import annotations

import json

from tests.conftest import run_wirelab
from wirelab.lab.state import LabState
from wirelab.lab.tour import run_chapters
from wirelab.rpc.tour import CHAPTERS


def test_tour_chapter_18_passes(wirelab_lab: LabState) -> None:
    results = list(run_chapters(CHAPTERS, wirelab_lab))
    failed = [r.to_json() for r in results if not r.ok]
    assert len(results) == 4 and not failed, failed


def test_call_and_client_commands(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("rpc", "call", "xmlrpc", "quadratic", "2", "-4", "0", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0.0, 2.0]"
    done = run_wirelab("rpc", "call", "xmlrpc", "quadratic", "1", "0", "1", env=wirelab_env)
    assert done.returncode == 1 and "no real roots" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_wirelab("rpc", "call", "jsonrpc", "lengths", "[1, 2]", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == [[2, [1, 2]]]
    done = run_wirelab("rpc", "client", "--kind", "rpyc", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert "The number of lines in the file was 5" in done.stdout
    done = run_wirelab("rpc", "call", "ftp://x", "m", env=wirelab_env)
    assert done.returncode == 2


def test_multicall_command(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("rpc", "multicall", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert [row["result"] for row in json.loads(done.stdout)] == [
        "abc",
        [0.0, 2.0],
        "[1, 2.0, 'three']",
    ]
