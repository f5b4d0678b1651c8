"""The playground's plumbing commands: where named namespaces live, and one runner for ``ip``,
``nft`` and ``tc`` (an argument list, never a shell; a failure is one clear error).

Shared by :mod:`wirelab.playground.netns` (building and tearing down) and
:mod:`wirelab.playground.rootless` (user namespaces); ``netns`` re-exports every name.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from wirelab.errors import ConfigError, ServiceUnavailable, WirelabError

__all__ = [
    "COMMAND_TIMEOUT",
    "ETC_NETNS",
    "NETNS_DIR",
    "PREFIX_PATTERN",
    "check_prefix",
    "namespace",
    "run",
]

#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = Path("/run/netns")
#: ``ip netns exec NS`` bind-mounts ``/etc/netns/NS/*`` over ``/etc/*`` (resolv.conf, hosts).
ETC_NETNS = Path("/etc/netns")
#: A prefix: ``wl`` then letters or digits, short enough for every name to stay readable.
PREFIX_PATTERN = re.compile(r"^wl[a-z0-9]{1,10}$")
#: Seconds any one plumbing command may take.
COMMAND_TIMEOUT = 20.0


def run(argv: Sequence[str], *, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run one command (no shell) and return its output; a failure is one clear error."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceUnavailable(f"{argv[0]} is not installed (iproute2 provides ip)") from exc
    except subprocess.TimeoutExpired as exc:
        raise WirelabError(f"{' '.join(argv[:6])} took more than {timeout:g} s") from exc
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split())[:300]
        raise WirelabError(f"{' '.join(argv[:8])} failed: {why or done.returncode}")
    return done.stdout


def namespace(prefix: str, name: str) -> str:
    """The namespace of host or LAN ``name`` in the playground ``prefix``."""
    return f"{prefix}-{name}"


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a valid playground prefix (``wl`` and up to 10 letters or digits)."""
    if not PREFIX_PATTERN.match(prefix):
        raise ConfigError(f"bad playground prefix {prefix[:40]!r} (wl and 1-10 letters/digits)")
    return prefix
