"""The asyncore architecture without its modules (Python 3.12+ with no backports installed):
one clear line naming what to install, and nothing else is affected."""

from __future__ import annotations

import subprocess
import sys

#: Runs the CLI in a child where importing asyncore and asynchat fails, as on 3.12+ without
#: the pyasyncore/pyasynchat backports.
WITHOUT_ASYNCORE = """
import sys
sys.modules["asyncore"] = None
sys.modules["asynchat"] = None
from wirelab.cli import main
sys.argv = ["wirelab", *sys.argv[1:]]
main()
"""


def _without_asyncore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_ASYNCORE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serving_asyncore_without_the_modules_says_what_to_install() -> None:
    done = _without_asyncore("zen", "serve", "127.0.0.1", "-p", "0", "--arch", "asyncore")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("wirelab: error: ")
    assert "pip install pyasyncore pyasynchat" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_other_architectures_do_not_need_the_modules() -> None:
    done = _without_asyncore("zen", "archs")
    assert done.returncode == 0, done.stderr
    assert "asyncore" in done.stdout.split() and "selectors" in done.stdout.split()
