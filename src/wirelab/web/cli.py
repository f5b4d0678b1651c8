"""``wirelab web ...`` (chapter 11): the payments apps, the attacks on them, and the scrapers.

The commands live in three modules, one per part of the chapter, each adding its own to ``app``:
:mod:`wirelab.web.cli_bank` (the Flask payments apps and the browser-proven attacks),
:mod:`wirelab.web.cli_django` (the same app on Django) and :mod:`wirelab.web.cli_scrape`
(the scrapers and crawlers).
"""

from __future__ import annotations

import typer

from wirelab.web import cli_bank, cli_django, cli_scrape

__all__ = ["app"]

app = typer.Typer(
    name="web",
    help="Chapter 11: a payments app that teaches XSS and CSRF (Flask, Django), and scrapers.",
    no_args_is_help=True,
)

for _part in (cli_bank, cli_django, cli_scrape):
    _part.register(app)
