"""Remove a playground when its controlling process dies: ``python -m ...reaper PREFIX PID``.

Started by the controller before it builds anything, in a session of its own so Ctrl-C in
the terminal does not reach it. It waits on a pidfd for the controller to exit (however it
exits: ``down``, Ctrl-C, SIGKILL) and then removes every namespace, link and process whose
name carries the prefix. After a clean ``down`` there is nothing left and it just exits.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Sequence

from wirelab.playground.netns import check_prefix, cleanup_prefix

__all__ = ["main", "wait_for_exit"]


def wait_for_exit(pid: int) -> None:
    """Return once process ``pid`` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfd (old kernel): poll
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def main(argv: Sequence[str] | None = None) -> int:
    """``PREFIX PID [DIR]``: wait for PID to exit, then clean up PREFIX (and remove DIR)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3) or not args[1].isdigit():
        print("usage: python -m wirelab.playground.reaper PREFIX PID [DIR]", file=sys.stderr)
        return 2
    prefix = check_prefix(args[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    wait_for_exit(int(args[1]))
    cleanup_prefix(prefix)
    if len(args) == 3:
        shutil.rmtree(args[2], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
