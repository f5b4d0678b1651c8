"""The xdist scheduling of ``make test`` (tests/scheduling.py): the serial groups really run on
one worker, a module's tests stay together, and the spread modules are cut test by test.

The run is real: a child ``pytest -n 2 --dist loadgroup`` over a small tree shaped like ours,
with our two hooks (the scheduler, the group marker) and nothing else of our conftest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import _SERIAL_GROUPS
from tests.scheduling import SPREAD, scope_of

ROOT = Path(__file__).resolve().parents[1]

_TESTS = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(6))


def test_scope_of_names_the_group_the_module_or_the_test() -> None:
    serial = ("playground", "hostile")
    assert scope_of("tests/playground/test_a.py::test_x[1]", serial) == "playground"
    assert scope_of("tests/hostile/sub/test_b.py::T::test_y", serial) == "hostile"
    assert scope_of("tests/web/test_c.py::test_z[a@b]", serial) == "tests/web/test_c.py"
    assert scope_of("tests/web/test_c.py::test_z@mine", serial) == "mine"
    spread = "tests/docs/test_chapter_pages.py::test_example[x]"
    assert spread.split("::")[0] in SPREAD
    assert scope_of(spread, serial) == spread


def test_loadgroup_keeps_groups_and_modules_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems, pytest_xdist_make_scheduler\n"
    )
    files = [f"tests/{group}/test_{group}.py" for group in _SERIAL_GROUPS]
    files += ["tests/one/test_module.py", *sorted(SPREAD)]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(_TESTS)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v",
         "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=", "tests"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    workers: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(r"^\[(gw\d)\] .*?PASSED (\S+)", done.stdout, re.M):
        workers.setdefault(nodeid.split("::")[0], set()).add(worker)
    assert set(workers) == set(files), done.stdout
    for name in files[:-1]:
        assert len(workers[name]) == 1, (name, workers[name])
    # Which worker takes the spread module's units depends on who is free first (with tests
    # this short, one worker can take them all), so that is not asserted here; that they are
    # units of one test each is (test_scope_of_names_the_group_the_module_or_the_test).
