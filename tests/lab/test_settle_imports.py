"""Under pytest a lab imports every wirelab module first, from one thread (settle_imports)."""

from __future__ import annotations

import sys

from wirelab.lab.supervisor import settle_imports


def test_every_wirelab_module_is_imported_before_a_lab_starts() -> None:
    assert any(type(f).__name__ == "AssertionRewritingHook" for f in sys.meta_path)
    settle_imports()
    # modules the lab's services import lazily, from their own threads
    assert {"wirelab.cache.daemon", "wirelab.tcp.server", "wirelab.zen.inetd"} <= set(sys.modules)
    assert "wirelab.__main__" not in sys.modules
