"""WIRELAB_REQUIRE_SERVICES: a service that cannot run fails a test instead of skipping it."""

from __future__ import annotations

import pytest

from wirelab.testing import services_required


@pytest.mark.parametrize(
    ("value", "required"), [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)]
)
def test_the_switch(value: str | None, required: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("WIRELAB_REQUIRE_SERVICES", raising=False)
    else:
        monkeypatch.setenv("WIRELAB_REQUIRE_SERVICES", value)
    assert services_required() is required
