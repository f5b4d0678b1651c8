"""The gunicorn configuration our child processes load (``--config python:wirelab.http...``).

It reads two settings from the environment :class:`~wirelab.http.server.GunicornProcess`
gives the child:

* ``WIRELAB_HTTP_CERT`` and ``WIRELAB_HTTP_KEY``: serve HTTPS with our server context
  (:func:`wirelab.net.tlsctx.server_context`: TLS 1.2 or newer, the lab certificate chain),
  through gunicorn's ``ssl_context`` hook instead of its own defaults;
* ``WIRELAB_HTTP_WIRELOG=1``: print every byte each connection reads and writes, as the
  book's ``config.py`` did by wrapping the listener's ``accept`` after the fork. Ours never
  fails on binary data (undecodable bytes are shown as ``\\xNN``), numbers the connections
  and marks the direction. Plain HTTP only: a TLS socket cannot be wrapped this way.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WireSocket", "post_fork", "ssl_context"]

_counter_lock = threading.Lock()
_counter = [0]


def _show(number: int, arrow: str, data: bytes) -> None:
    if not data:
        return
    text = data.decode("utf-8", "backslashreplace")
    lines = [f"[{number}] {arrow} {line}" for line in text.split("\n")]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


class WireSocket:
    """A connected socket that prints what it receives (``<``) and sends (``>``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        with _counter_lock:
            _counter[0] += 1
            self._number = _counter[0]

    def recv(self, count: int, *flags: int) -> bytes:
        data = self._sock.recv(count, *flags)
        _show(self._number, "<", data)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, *flags: int) -> int:
        size = self._sock.recv_into(buffer, nbytes, *flags)
        _show(self._number, "<", bytes(memoryview(buffer)[:size]))
        return size

    def send(self, data: bytes, *flags: int) -> int:
        sent = self._sock.send(data, *flags)
        _show(self._number, ">", bytes(data[:sent]))
        return sent

    def sendall(self, data: bytes, *flags: int) -> None:
        self._sock.sendall(data, *flags)
        _show(self._number, ">", bytes(data))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # Through send(), so the bytes are shown (os.sendfile would bypass us).
        sent: int = socket.socket._sendfile_use_send(self, file, offset, count)  # type: ignore[attr-defined]
        return sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook: in each worker, wrap every accepted socket in :class:`WireSocket`."""
    if os.environ.get("WIRELAB_HTTP_WIRELOG") != "1":
        return
    for listener in worker.sockets:
        original: Callable[[], tuple[socket.socket, Any]] = listener.accept

        def accept(original: Callable[[], tuple[socket.socket, Any]] = original) -> Any:
            client, address = original()
            return WireSocket(client), address

        listener.accept = accept


def ssl_context(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> Any:
    """gunicorn hook: our server context with the lab certificate (when HTTPS is asked)."""
    cert = os.environ.get("WIRELAB_HTTP_CERT")
    key = os.environ.get("WIRELAB_HTTP_KEY")
    if not cert or not key:
        return default_ssl_context_factory()
    from wirelab.net.tlsctx import server_context

    return server_context(cert, key)


# gunicorn reads these names from the module; HTTPS is on when both files are given.
if os.environ.get("WIRELAB_HTTP_CERT") and os.environ.get("WIRELAB_HTTP_KEY"):
    certfile = os.environ["WIRELAB_HTTP_CERT"]
    keyfile = os.environ["WIRELAB_HTTP_KEY"]
