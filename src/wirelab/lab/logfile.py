"""The detached lab's log: ``lab.log``, readable by its owner only, rotated at a bounded size.

A lab under abuse logs a line per refused or broken connection (~120 bytes each); left alone,
``lab.log`` would grow without end. :func:`log_to_file` sends the process's log records to a
:class:`LabLogHandler`: ``lab.log`` is rotated to ``lab.log.1`` ... ``lab.log.N`` past
:data:`LAB_LOG_BYTES`, so the log never holds more than ``(N + 1) x LAB_LOG_BYTES``. The
process's own standard output and error (start-up lines, a crash) follow the rotation: they
are pointed at the fresh file each time, so nothing is written to a file that was rotated away.
Every file is created ``0600``, like the rest of the lab's directory.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path

__all__ = ["LAB_LOG_BACKUPS", "LAB_LOG_BYTES", "LOG_FORMAT", "LabLogHandler", "log_to_file"]

#: Bytes ``lab.log`` may reach before it is rotated: 1 MiB (~8,700 abusive connections).
LAB_LOG_BYTES = 1 << 20

#: Rotated files kept (``lab.log.1`` ... ``lab.log.3``): at most 4 MiB of log in all.
LAB_LOG_BACKUPS = 3

#: One line per record, with the time: the log is read after the fact.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LabLogHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file created ``0600``; optionally carries stdout and stderr along.

    Args:
        path: the log file.
        max_bytes: the size past which it is rotated.
        backups: how many rotated files are kept.
        capture_std: point file descriptors 1 and 2 at the current file, now and after every
            rotation (a detached lab's output goes to its log).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = LAB_LOG_BYTES,
        backups: int = LAB_LOG_BACKUPS,
        capture_std: bool = False,
    ) -> None:
        self.capture_std = capture_std
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._capture()

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # an older file keeps its mode otherwise
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        super().doRollover()
        self._capture()

    def _capture(self) -> None:
        if not self.capture_std or self.stream is None:
            return
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)


def log_to_file(
    path: Path,
    *,
    max_bytes: int = LAB_LOG_BYTES,
    backups: int = LAB_LOG_BACKUPS,
    capture_std: bool = True,
) -> LabLogHandler:
    """Send every log record of this process to ``path`` (rotated), instead of the terminal."""
    handler = LabLogHandler(path, max_bytes=max_bytes, backups=backups, capture_std=capture_std)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    return handler
