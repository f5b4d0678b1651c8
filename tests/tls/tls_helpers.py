"""Helpers shared by the TLS tests (imported relatively, as ``.tls_helpers``)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from wirelab.net.addresses import listen_tcp
from wirelab.net.ca import LabCA
from wirelab.tls.server import GreetingServer, start_greeting_server


def client_ctx(ca: LabCA, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A stdlib verifying client context trusting ``ca`` (independent of our builders)."""
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


@contextmanager
def serving(server: GreetingServer) -> Iterator[tuple[str, int]]:
    """Run ``server`` on 127.0.0.1, port 0, on an event loop in a thread; yield its address."""
    sock = listen_tcp("127.0.0.1", 0)
    address = sock.getsockname()[:2]
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        srv = await start_greeting_server(sock, server)
        stop.append(asyncio.Event())
        loops.append(asyncio.get_running_loop())
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await srv.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="tls-test")
    thread.start()
    try:
        assert ready.wait(5), "the server did not start"
        yield address
    finally:
        if stop:
            loops[0].call_soon_threadsafe(stop[0].set)
        thread.join(5)
        sock.close()


@contextmanager
def one_shot(handler: Callable[[socket.socket], None]) -> Iterator[tuple[str, int]]:
    """A plain TCP server for one connection; ``handler(conn)`` plays the peer in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    address = listener.getsockname()[:2]

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            with suppress(OSError):
                handler(conn)

    thread = threading.Thread(target=run, name="tls-test-peer")
    thread.start()
    try:
        yield address
    finally:
        thread.join(15)
        listener.close()


def tls_server_handler(ctx: ssl.SSLContext, payload: bytes) -> Callable[[socket.socket], None]:
    """A stdlib TLS server: handshake, send ``payload``, close cleanly."""

    def handle(conn: socket.socket) -> None:
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except ssl.SSLError:
            return
        with tls:
            tls.sendall(payload)
            with suppress(ssl.SSLError, OSError):
                tls.unwrap()

    return handle


@contextmanager
def tls_acceptor(ctx: ssl.SSLContext) -> Iterator[tuple[str, int]]:
    """A stdlib TLS server on 127.0.0.1 for any number of connections, one after another.

    Each connection gets a handshake under ``ctx`` (a refused one is the point of most
    tests), then a gentle close. For servers our own builders refuse to make, such as one
    that speaks only TLS 1.0.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    address = listener.getsockname()[:2]
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
                with suppress(OSError):  # ssl.SSLError included: the client may refuse us
                    tls.do_handshake()
                # FIN after our last record, then read until the client is gone, so that no
                # RST overtakes an alert on its way to the client.
                with suppress(OSError):
                    tls.shutdown(socket.SHUT_WR)
                    while tls.recv(4096):
                        pass

    thread = threading.Thread(target=run, name="tls-test-acceptor")
    thread.start()
    try:
        yield address
    finally:
        stop.set()
        thread.join(15)
        listener.close()
