"""The benchmark's C programs for tests: built once, or a skip only where that is honest."""

from __future__ import annotations

import os
import shutil

import pytest

from wirelab.errors import ServiceUnavailable
from wirelab.zen.bench import Tools, build_tools


def required() -> bool:
    """``WIRELAB_REQUIRE_SERVICES=1`` (``make test``, CI): a missing tool fails, not skips."""
    return os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0")


def c_tools() -> Tools:
    """Compile ``bench/zen/*.c`` (cached) and return the programs.

    A compile error always fails the test: it is a defect in our C code, never a reason to
    skip. A missing gcc skips the test, except under ``WIRELAB_REQUIRE_SERVICES=1``, where it
    fails too.
    """
    have_gcc = shutil.which("gcc") or shutil.which("cc")
    try:
        return build_tools()
    except ServiceUnavailable as exc:
        if have_gcc or required():
            pytest.fail(f"the benchmark's C programs could not be built: {exc}")
        pytest.skip(str(exc))
