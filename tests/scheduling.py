"""How ``make test`` (``pytest -n auto --dist loadgroup``) shares the suite among xdist workers.

xdist's own ``loadgroup`` reads a test's group from an ``@group`` suffix that its collection
hook writes into ``item._nodeid``; pytest 9 keeps the node id elsewhere (``item._id``), so the
suffix never appears and every test became a work unit of its own. Two things broke quietly:

* the serial groups (tests/playground, tests/hostile: see ``tests/conftest.py``) ran on both
  workers at once, so two playgrounds were built and two floods ran side by side;
* a module's tests alternated between the workers, so each module-scoped fixture (a lab, a
  browser, a whole ``wirelab tour --playground``: 35 s) was set up once per worker.

:class:`GroupScheduling` decides the unit from the node id itself: a serial directory is one
unit, any other module is one unit (its fixtures are set up once), and the modules of
:data:`SPREAD` (many independent slow tests, no shared fixture) are spread test by test, which
also fills the end of the run. xdist hands out the units with the most tests first.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

#: Modules whose tests share nothing costly: one test per unit, so both workers run them.
SPREAD = frozenset({"tests/docs/test_chapter_pages.py"})


def scope_of(nodeid: str, serial: Iterable[str], spread: Iterable[str] = SPREAD) -> str:
    """The work unit of the test ``nodeid``: its serial group, its module, or itself."""
    if nodeid.rfind("@") > nodeid.rfind("]"):  # a group suffix, should xdist write one again
        return nodeid.rsplit("@", 1)[1]
    module = nodeid.split("::", 1)[0]
    parts = module.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in serial:
        return parts[1]
    if module in spread:
        return nodeid
    return module


class GroupScheduling(LoadScopeScheduling):
    """``--dist loadgroup`` as ``tests/conftest.py`` means it (see the module's docstring)."""

    def __init__(
        self, config: pytest.Config, log: Producer | None = None, *, serial: Iterable[str]
    ) -> None:
        super().__init__(config, log)
        self.serial = tuple(serial)

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid, self.serial)
