"""The RPyC line counter (chapter 18), in service mode only, bounded on every side.

The book's ``rpyc_server.py`` runs rpyc's ``ThreadedServer`` on 0.0.0.0:18861: a thread per
connection with no cap, no idle timeout, no bound on a frame (the header's 32-bit length is
read as it comes, and a compressed frame is inflated without limit), and the exceptions it
sends carry the server's tracebacks. It counts lines with a variable that is unbound for an
empty file (UnboundLocalError).

**Why not the connection server.** An rpyc connection is served by blocking calls in a
thread (a callback to the client waits for its answer inside the dispatch), so it cannot be an
asyncio handler. :class:`RPyCServer` is therefore its own small accept loop, with the same
bounds as :class:`wirelab.net.server.ConnectionServer`: at most ``max_connections`` served at
once (one more is closed at once, one warning line per burst), a connection quiet for
``idle_timeout`` is closed, every frame must arrive within ``frame_timeout`` and be at most
``max_frame`` bytes (inflated too), and :meth:`RPyCServer.close` closes every connection and
joins every thread.

**What a client may reach.** The service (:class:`LineCounterService`) exposes
``line_counter``, ``list_files`` and ``read_file``; rpyc's configuration allows nothing else
(no public or private attributes, no setattr/delattr, no pickle, no classic mode: ``eval``,
``execute`` and ``modules`` do not exist), and no traceback or version leaves the server.
``read_file`` is confined to the service's own directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import selectors
import socket
import stat
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rpyc
from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream

from wirelab.errors import ConnectError
from wirelab.net.addresses import listen_tcp
from wirelab.net.server import OverloadLog

__all__ = [
    "DEFAULT_FILES",
    "SERVER_CONFIG",
    "LineCounterService",
    "RPyCLimits",
    "RPyCServer",
    "open_rpyc_server",
    "start_rpyc_server",
]

log = logging.getLogger(__name__)

_Socket = socket.socket

#: A closing connection's drain: how long and how much (then it is closed anyway).
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20

#: The service's own directory by default: the book's testfile.txt.
DEFAULT_FILES = Path(__file__).parent / "files"

#: rpyc's configuration on our side of every connection: service mode, nothing implicit.
SERVER_CONFIG: dict[str, Any] = {
    "allow_safe_attrs": True,
    "allow_exposed_attrs": True,
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_getattr": True,
    "allow_setattr": False,
    "allow_delattr": False,
    "allow_pickle": False,
    "include_local_traceback": False,
    "include_local_version": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
    "instantiate_oldstyle_exceptions": False,
    "propagate_SystemExit_locally": False,
    "propagate_KeyboardInterrupt_locally": False,
    "log_exceptions": False,
    "sync_request_timeout": 10,
}


@dataclass(frozen=True)
class RPyCLimits:
    """The bounds of the RPyC server.

    Attributes:
        max_connections: connections served at once (a thread each).
        idle_timeout: seconds a connection may send nothing.
        frame_timeout: seconds one frame (header or body) may take to arrive.
        max_frame: largest frame, bytes, before and after inflating.
        max_lines: most lines ``line_counter`` reads from one file.
        max_file: largest file ``read_file`` sends, bytes.
    """

    max_connections: int = 512
    idle_timeout: float = 60.0
    frame_timeout: float = 10.0
    max_frame: int = 4 << 20
    max_lines: int = 100_000
    max_file: int = 1 << 20


class _BoundedStream(SocketStream):  # type: ignore[misc]
    """A socket stream whose every read has a deadline (rpyc's waits forever)."""

    def __init__(self, sock: socket.socket, frame_timeout: float) -> None:
        super().__init__(sock)
        self.frame_timeout = frame_timeout

    def close(self) -> None:
        """Close gracefully: our end of file first, then drain what the peer still sends (at
        most 1 s and 1 MiB), so that a refused peer gets a FIN, not a reset."""
        sock = self.sock
        if not self.closed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(_LINGER_SECONDS)
                deadline = time.monotonic() + _LINGER_SECONDS
                drained = 0
                while time.monotonic() < deadline and drained < _LINGER_BYTES:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
        super().close()

    def read(self, count: int) -> bytes:
        deadline = time.monotonic() + self.frame_timeout
        data: list[bytes] = []
        while count > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise EOFError(f"a frame did not arrive within {self.frame_timeout:g} s")
            try:
                self.sock.settimeout(left)
                buf = self.sock.recv(min(self.MAX_IO_CHUNK, count))
            except TimeoutError:
                continue
            except OSError as exc:
                self.close()
                raise EOFError(str(exc)) from None
            if not buf:
                self.close()
                raise EOFError("connection closed by peer")
            data.append(buf)
            count -= len(buf)
        return b"".join(data)


class _BoundedChannel(Channel):  # type: ignore[misc]
    """rpyc's framing (4-byte length, 1-byte compressed flag) with a size limit."""

    def __init__(self, stream: _BoundedStream, max_frame: int) -> None:
        super().__init__(stream)
        self.max_frame = max_frame

    def recv(self) -> bytes:
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.max_frame:
            self.stream.close()
            raise EOFError(f"a frame of {length} bytes is over the {self.max_frame} limit")
        data: bytes = self.stream.read(length + len(self.FLUSHER))[: -len(self.FLUSHER)]
        if compressed:
            inflater = zlib.decompressobj()
            try:
                data = inflater.decompress(data, self.max_frame)
            except zlib.error as exc:
                self.stream.close()
                raise EOFError(f"a frame does not inflate: {exc}") from None
            if inflater.unconsumed_tail:
                self.stream.close()
                raise EOFError(f"a frame inflates past the {self.max_frame} limit")
        return data


class LineCounterService(rpyc.Service):  # type: ignore[misc]
    """The book's line counter, and files read from the service's own directory only.

    Args:
        files: the one directory ``read_file`` may read.
        limits: ``max_lines`` and ``max_file``.
    """

    def __init__(self, files: Path = DEFAULT_FILES, limits: RPyCLimits | None = None) -> None:
        super().__init__()
        self._files = files.resolve()
        self._limits = limits or RPyCLimits()

    def exposed_line_counter(self, fileobj: Any, function: Callable[[str], Any]) -> int:
        """Read every line of ``fileobj`` (the client's), call ``function`` on each; the count."""
        count = 0
        for line in fileobj.readlines():
            count += 1
            if count > self._limits.max_lines:
                raise ValueError(f"more than {self._limits.max_lines} lines")
            function(line)
        return count

    def exposed_list_files(self) -> tuple[str, ...]:
        """The names of the files ``read_file`` can read."""
        return tuple(sorted(p.name for p in self._files.iterdir() if p.is_file()))

    def exposed_read_file(self, name: str) -> str:
        """The text of the file ``name`` of the service's directory (no path, no link out)."""
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or "\0" in name:
            raise ValueError("give a file name from list_files(), without a directory")
        if name in (".", "..") or name.startswith("."):
            raise ValueError("give a file name from list_files(), without a directory")
        path = self._files / name
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            reason = "a symbolic link" if exc.errno == errno.ELOOP else "no such file"
            raise ValueError(f"cannot read {name!r}: {reason}") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"cannot read {name!r}: not a file")
            data = handle.read(self._limits.max_file + 1)
        if len(data) > self._limits.max_file:
            raise ValueError(f"{name!r} is over {self._limits.max_file} bytes")
        return data.decode("utf-8", "replace")


class RPyCServer:
    """An accept loop serving :class:`LineCounterService`, a thread per connection, bounded.

    Args:
        sock: a listening socket (this server owns it).
        files: the service's directory.
        limits: the bounds.
    """

    def __init__(
        self, sock: socket.socket, files: Path = DEFAULT_FILES, limits: RPyCLimits | None = None
    ) -> None:
        self.sock = sock
        self.files = files
        self.limits = limits or RPyCLimits()
        #: Connections served since the start, and refused for the cap.
        self.connections = 0
        self.refused = 0
        self._overload = OverloadLog()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[threading.Thread, _Socket] = {}
        self._thread = threading.Thread(target=self._accept_loop, name="rpyc accept", daemon=True)

    @property
    def socket(self) -> _Socket:
        """The listening socket (for :func:`wirelab.net.server.listener_socket`)."""
        return self.sock

    @property
    def address(self) -> tuple[str, int]:
        """The address it listens at."""
        host, port = self.sock.getsockname()[:2]
        return host, port

    @property
    def active(self) -> int:
        """Connections being served."""
        with self._lock:
            return len(self._active)

    def start(self) -> None:
        """Start accepting in a thread."""
        self._thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(0.2):
                    continue
                try:
                    conn, _ = self.sock.accept()
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        return
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        time.sleep(0.1)
                    continue
                self._start_one(conn)

    def _start_one(self, conn: _Socket) -> None:
        with self._lock:
            if len(self._active) >= self.limits.max_connections:
                self.refused += 1
                burst = self._overload.event()
                if burst is not None:
                    log.warning(
                        "rpyc: at the cap of %d connections, refusing new ones",
                        self.limits.max_connections,
                    )
                with contextlib.suppress(OSError):
                    conn.close()
                return
            self.connections += 1
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="rpyc conn", daemon=True
            )
            self._active[thread] = conn
        thread.start()

    def _serve(self, sock: _Socket) -> None:
        limits = self.limits
        connection = None
        try:
            sock.setblocking(True)
            stream = _BoundedStream(sock, limits.frame_timeout)
            channel = _BoundedChannel(stream, limits.max_frame)
            peer = sock.getpeername()
            config = dict(SERVER_CONFIG, endpoints=(sock.getsockname(), peer), logger=log)
            service = LineCounterService(self.files, limits)
            connection = service._connect(channel, config)
            while not self._stop.is_set() and not connection.closed:
                if not connection.poll(limits.idle_timeout) and not connection.closed:
                    log.info("rpyc: %s idle for %g s: closed", peer[0], limits.idle_timeout)
                    break
        except (EOFError, OSError) as exc:
            log.debug("rpyc: connection ended: %s", exc)
        except Exception as exc:  # a bug of rpyc's or ours: one line, the others go on
            log.warning("rpyc: connection failed: %s", str(exc)[:200] or type(exc).__name__)
        finally:
            if connection is not None:
                # Close our side first (FIN, then drain): rpyc's close() asks the peer and
                # waits for its answer up to sync_request_timeout, which a silent peer never
                # gives. With the channel closed, that question fails at once.
                with contextlib.suppress(Exception):
                    connection._channel.close()
                with contextlib.suppress(Exception):
                    connection.close()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                self._active.pop(threading.current_thread(), None)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and join every thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self.sock.close()
        with self._lock:
            threads = list(self._active.items())
        for _, conn in threads:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread, _ in threads:
            thread.join(timeout)

    async def aclose(self) -> None:
        """:meth:`close` off the event loop."""
        await asyncio.to_thread(self.close)


def start_rpyc_server(
    host: str | None,
    port: int | str,
    *,
    files: Path = DEFAULT_FILES,
    limits: RPyCLimits | None = None,
) -> RPyCServer:
    """Bind ``host``:``port`` and serve the line counter in a thread.

    Raises:
        ConnectError: the address cannot be bound.
    """
    sock = listen_tcp(host, port)
    try:
        sock.setblocking(False)
        server = RPyCServer(sock, files, limits)
        server.start()
    except OSError as exc:
        sock.close()
        raise ConnectError(f"cannot start the RPyC server: {exc.strerror or exc}") from exc
    return server


async def open_rpyc_server(
    host: str | None,
    port: int | str,
    *,
    files: Path = DEFAULT_FILES,
    limits: RPyCLimits | None = None,
) -> RPyCServer:
    """:func:`start_rpyc_server` for an event loop (the lab's opener, ``rpc serve``)."""
    return start_rpyc_server(host, port, files=files, limits=limits)
