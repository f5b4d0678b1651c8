"""Who may build a playground: root, or an unprivileged user in a user namespace of their own.

:func:`check_capability` says which (or why neither, in one line); the rest builds the
command prefixes that create a rootless controller's namespaces (``unshare``) and enter them
later (``nsenter``). :mod:`wirelab.playground.netns` re-exports every name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from wirelab.errors import ConfigError, ServiceUnavailable
from wirelab.playground.plumbing import ETC_NETNS, NETNS_DIR, run

__all__ = [
    "MAX_USER_NAMESPACES",
    "ROOTLESS_ENV",
    "check_capability",
    "enter_argv",
    "private_mounts",
    "rootless_blocker",
    "unshare_argv",
]

#: The sysctl that says whether unprivileged processes may create user namespaces.
MAX_USER_NAMESPACES = Path("/proc/sys/user/max_user_namespaces")
#: Set in the controller a rootless ``up`` starts inside its user namespace.
ROOTLESS_ENV = "WIRELAB_PLAYGROUND_ROOTLESS"


def rootless_blocker(
    max_user_namespaces: Path = MAX_USER_NAMESPACES,
    dirs: Sequence[Path] | None = None,
) -> str | None:
    """Why an unprivileged user cannot build a playground here, or ``None`` when they can.

    Rootless needs unprivileged user namespaces (``max_user_namespaces`` above 0),
    util-linux's ``unshare`` and ``nsenter``, and the mount points ``/run/netns`` and
    ``/etc/netns`` to exist (a private tmpfs is mounted on each inside the user namespace;
    an unprivileged user cannot create them).
    """
    try:
        allowed = int(max_user_namespaces.read_text().strip()) > 0
    except (OSError, ValueError):
        allowed = False
    if not allowed:
        return f"unprivileged user namespaces are off here ({max_user_namespaces} is 0)"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"rootless needs util-linux's {tool}"
    for directory in (NETNS_DIR, ETC_NETNS) if dirs is None else dirs:
        if not directory.is_dir():
            return f"rootless needs {directory} to exist (once, as root: mkdir -p {directory})"
    return None


def check_capability(*, rootless_ok: bool = False) -> str:
    """``"root"`` or (where allowed) ``"rootless"``; one clear line when neither can work."""
    if shutil.which("ip") is None:
        raise ServiceUnavailable("the playground needs iproute2's ip (apt-get install iproute2)")
    if os.geteuid() == 0:
        return "root"
    why = rootless_blocker()
    if why is None and rootless_ok:
        return "rootless"
    if why is None:  # rootless works, but not for this command
        raise ServiceUnavailable(
            "this needs root (run it with sudo); as an unprivileged user, start a rootless "
            "playground with `wirelab playground up --detach` first"
        )
    raise ServiceUnavailable(
        f"the playground needs root (run it with sudo) or rootless user namespaces: {why}"
    )


def unshare_argv() -> list[str]:
    """The prefix that runs a command as root of a new user namespace, with private mounts
    and a network namespace of its own (so ``ip netns add`` can return to it)."""
    return [
        "unshare", "--user", "--map-root-user", "--mount", "--net", "--propagation", "private",
    ]  # fmt: skip


def private_mounts() -> None:
    """In a rootless controller: a private tmpfs on ``/run/netns`` and ``/etc/netns``."""
    for directory in (NETNS_DIR, ETC_NETNS):
        run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=4m", "tmpfs", str(directory)])


def enter_argv(pid: int) -> list[str]:
    """The prefix that runs a command in the user and mount namespaces of rootless
    controller ``pid``, where its named namespaces are, as that namespace's root.

    ``nsenter --preserve-credentials``: the namespace was made with ``setgroups`` denied (as
    an unprivileged user's must be), so nsenter must not try to change groups; the owner's
    own uid is root in there. Root (a test, an administrator) first becomes the owner.
    """
    try:
        info = os.stat(f"/proc/{pid}")
    except OSError as exc:
        raise ConfigError(f"the rootless playground's controller {pid} is gone") from exc
    argv = ["nsenter", "--target", str(pid), "--user", "--mount", "--preserve-credentials", "--"]
    if os.geteuid() != info.st_uid:
        become = [f"--reuid={info.st_uid}", f"--regid={info.st_gid}", "--clear-groups"]
        argv = ["setpriv", *become, *argv]
    return argv
