"""``wirelab web`` commands of chapter 11 (scrape): see :mod:`wirelab.web.cli`."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app`` (the ``wirelab web`` group)."""
