"""pytest fixtures for every lab server (registered through the ``pytest11`` entry point).

* ``wirelab_lab`` (session): the whole lab on free loopback ports; a :class:`LabState`.
* ``lab_<service>`` (session): one service's endpoints (``lab_udp``, ``lab_tcp`` ...),
  a :class:`~wirelab.lab.state.ServiceView`; the test is skipped if the service cannot run
  on this machine, unless ``WIRELAB_REQUIRE_SERVICES=1`` makes that a failure.
* ``wirelab_env``: an environment for running ``wirelab`` commands against that lab.
* ``lab_mailbox``: the lab account's mailbox (:class:`wirelab.pop.mailbox.LabMailbox`):
  deliver, list and clear what the lab's POP3 and IMAP servers serve.

The lab starts on first use only, so projects that never ask for it pay nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wirelab.errors import ConfigError
from wirelab.lab.registry import services
from wirelab.lab.service import LabContext
from wirelab.lab.state import LabState, ServiceView, state_path
from wirelab.lab.supervisor import LabThread
from wirelab.testing import cli_env, services_required


@pytest.fixture(scope="session")
def wirelab_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The whole lab, on free loopback ports, for the test session."""
    directory: Path = tmp_path_factory.mktemp("wirelab-lab")
    lab = LabContext(state_dir=directory, ephemeral=True)
    thread = LabThread(services(), lab, state_file=state_path(directory))
    state = thread.start()
    yield state
    thread.stop()


@pytest.fixture
def wirelab_env(wirelab_lab: LabState) -> dict[str, str]:
    """Environment variables that point ``wirelab`` commands at the session lab."""
    return cli_env(wirelab_lab)


def _service_fixture(name: str) -> Callable[[LabState], ServiceView]:
    def fixture(wirelab_lab: LabState) -> ServiceView:
        try:
            return wirelab_lab.service(name)
        except ConfigError as exc:
            if name in wirelab_lab.unavailable and not services_required():
                pytest.skip(str(exc))
            raise

    fixture.__name__ = f"lab_{name}"
    fixture.__doc__ = f"The lab's {name!r} service (its endpoints)."
    return pytest.fixture(scope="session", name=f"lab_{name}")(fixture)


for _svc in services():
    globals()[f"lab_{_svc.name}"] = _service_fixture(_svc.name)


@pytest.fixture
def lab_mailbox(wirelab_lab: LabState) -> object:
    """The lab account's mailbox (deliver, messages, clear) and its POP3/IMAP addresses."""
    from wirelab.pop.mailbox import LabMailbox

    return LabMailbox(wirelab_lab)
