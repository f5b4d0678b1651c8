"""Helpers for tests that want real lab servers (ours, or another project's).

The pytest plugin (:mod:`wirelab.pytest_plugin`) builds on these; they also work without
pytest::

    from wirelab.testing import private_lab

    with private_lab(["udp"]) as state:
        host, port = state.endpoint("udp").sockaddr
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from wirelab.lab.registry import find_services
from wirelab.lab.service import LabContext
from wirelab.lab.state import LabState, state_path
from wirelab.lab.supervisor import LabThread

__all__ = ["cli_env", "private_lab", "services_required"]


@contextmanager
def private_lab(
    names: Sequence[str] | None = None, directory: Path | None = None
) -> Iterator[LabState]:
    """Run the named lab services (all for ``None``) on free loopback ports, then stop them.

    The lab writes its state file in ``directory`` (a temporary one by default), so CLI
    commands run with :func:`cli_env` find it.
    """
    with tempfile.TemporaryDirectory(prefix="wirelab-lab-") as tmp:
        where = directory or Path(tmp)
        lab = LabContext(state_dir=where, ephemeral=True)
        thread = LabThread(find_services(names), lab, state_file=state_path(where))
        state = thread.start()
        try:
            yield state
        finally:
            thread.stop()


def cli_env(state: LabState) -> dict[str, str]:
    """An environment in which ``wirelab`` commands use the lab ``state`` describes."""
    return dict(os.environ, WIRELAB_HOME=state.directory, NO_COLOR="1", COLUMNS="200")


def services_required() -> bool:
    """True when a lab service that cannot run here must fail a test, not skip it.

    ``WIRELAB_REQUIRE_SERVICES=1`` (``make test`` and so CI set it) turns every "memcached is
    not installed" skip into a failure, so a broken set-up cannot pass as skipped tests.
    """
    return os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0")
