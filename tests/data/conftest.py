"""Independent TCP servers for the chapter 5 clients: raw stdlib sockets, one thread each."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

Behaviour = Callable[[socket.socket], None]


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], tuple[str, int]]]:
    """Start a one-connection server written with plain sockets; ``behaviour(conn)`` serves it.

    Returns ``(host, port)``. The thread and sockets are closed when the test ends.
    """
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(behaviour: Behaviour) -> tuple[str, int]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                with contextlib.suppress(OSError):
                    behaviour(conn)

        thread = threading.Thread(target=serve, name="raw-server")
        thread.start()
        threads.append(thread)
        return listener.getsockname()[:2]

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(15)
