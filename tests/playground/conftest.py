"""Fixtures of the playground tests: one playground with its servers for the module, torn down
whatever happens, and a check that this machine can build one at all.

Building a playground needs root and iproute2 (nftables or iptables for the modems' NAT).
Where that is missing the tests skip, except under ``WIRELAB_REQUIRE_SERVICES=1`` (CI), where
a missing capability fails them so a broken set-up cannot pass as skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirelab.playground.control import start_reaper, start_services
from wirelab.playground.netns import Playground, cleanup_prefix
from wirelab.testing import services_required


def missing_capability() -> str | None:
    """Why this machine cannot build a playground, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "the playground needs root"
    for tool in ("ip", "tc", "ss", "sysctl"):
        if shutil.which(tool) is None:
            return f"the playground needs {tool}"
    if shutil.which("nft") is None and shutil.which("iptables") is None:
        return "the playground needs nftables or iptables"
    return None


def require_netns() -> None:
    """Skip (fail in CI) a test that needs to build a playground where none can be built."""
    why = missing_capability()
    if why is None:
        return
    if services_required():
        pytest.fail(f"{why} (WIRELAB_REQUIRE_SERVICES=1)")
    pytest.skip(why)


@pytest.fixture(scope="package")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    """A playground with its servers (DNS on backbone, UDP on www, zen on ftp), for the package.

    A reaper watches this pytest process, so even a killed test run leaves nothing behind.
    """
    require_netns()
    from wirelab.net.ca import LabCA

    base = tmp_path_factory.mktemp("playground")
    prefix = f"wlt{os.getpid()}"
    pg = Playground(prefix, base / prefix)
    reaper = start_reaper(prefix, os.getpid(), pg.directory)
    try:
        ca = LabCA.load_or_create(base / "ca")
        pg.up({"ca.crt": ca.cert_pem})
        start_services(pg, base)
        yield pg
    finally:
        pg.down()
        cleanup_prefix(prefix)
        reaper.terminate()
        reaper.wait(timeout=10)


def namespaces_of(prefix: str) -> list[str]:
    """The namespaces on this machine whose names carry ``prefix``."""
    run_netns = Path("/run/netns")
    if not run_netns.exists():
        return []
    return sorted(p.name for p in run_netns.iterdir() if p.name.startswith(f"{prefix}-"))


def processes_in(prefix: str) -> list[int]:
    """Processes whose network namespace is one of ``prefix``'s."""
    from wirelab.playground.netns import _pids_in

    return _pids_in(namespaces_of(prefix))
