"""Where chapter 1 keeps what it may rebuild: the user's cache directory, shared by every lab.

``$WIRELAB_CACHE_DIR`` wins (tests point it at a temporary directory); otherwise
``$XDG_CACHE_HOME/wirelab`` when that variable holds an absolute path (the XDG Base
Directory rules ignore a relative one), else ``~/.cache/wirelab``. Nothing here is precious:
every file below it can be deleted at any time and is rebuilt or forgotten.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "user_cache_dir"]

#: The environment variable that overrides the cache directory.
CACHE_ENV = "WIRELAB_CACHE_DIR"


def user_cache_dir() -> Path:
    """The wirelab cache directory (not created here)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = str(Path.home() / ".cache")
    return Path(base) / "wirelab"
