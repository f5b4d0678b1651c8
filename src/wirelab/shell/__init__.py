"""Chapter 16's minimal shell: the lab accounts' login shell (F92).

See :mod:`wirelab.shell.minimal`.
"""

from __future__ import annotations

from wirelab.shell.minimal import ALLOWED_COMMANDS, MinimalShell, ShellRefused, parse_line

__all__ = ["ALLOWED_COMMANDS", "MinimalShell", "ShellRefused", "parse_line"]
