"""The book's server designs, rebuilt for the benchmark only (chapter 7; not for use).

These reproduce the *designs* of the book's ``srv_*.py`` programs, so ``wirelab zen bench``
can check that each of our architectures is at least as fast as the book's version of it.
They keep the book's framing: ``recv_until`` appends 4 KiB reads to a growing buffer until the
whole buffer *ends with* ``?``. Known bugs, kept on purpose (BOOK.md section 7.1):

* two questions in one read become one unknown aphorism and the second answer is never sent,
  so pipelined runs cannot be answered correctly: the benchmark uses these at pipeline 1 only;
* the buffer grows without limit and is rebuilt by concatenation; no timeouts anywhere.

``book-asyncio2`` is the book's stream server written with ``async def`` (its
``@asyncio.coroutine`` form no longer runs), still without ``drain`` or closing the writer.
``book-asynchat`` is ``srv_legacy2.py`` on asyncore/asynchat: asynchat splits on every ``?``,
so it is the one book design that answers pipelined questions (still with no limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import socketserver
import threading
from typing import Any

from wirelab.zen._common import RunningServer
from wirelab.zen._core import ANSWERS, UNKNOWN, ZenConfig

__all__ = ["BOOK_ARCHS", "BOOK_OF", "BOOK_PIPELINES"]


def _get_answer(aphorism: bytes) -> bytes:
    return ANSWERS.get(aphorism, UNKNOWN)


def _recv_until(sock: socket.socket, suffix: bytes) -> bytes:
    message = sock.recv(4096)
    if not message:
        raise EOFError("socket closed")
    while not message.endswith(suffix):
        data = sock.recv(4096)
        if not data:
            raise OSError(f"received {message!r} then socket closed")
        message += data
    return message


def _handle_conversation(sock: socket.socket) -> None:
    try:
        while True:
            question = _recv_until(sock, b"?")
            sock.sendall(_get_answer(question))
    except (EOFError, OSError):
        pass
    finally:
        sock.close()


def _threads(arch: str, listener: socket.socket, count: int) -> RunningServer:
    stopping = threading.Event()

    def accept_forever() -> None:
        while not stopping.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            _handle_conversation(sock)

    threads = [
        threading.Thread(target=accept_forever, name=f"zen-{arch}", daemon=True)
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()

    def stop() -> None:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for thread in threads:
            thread.join(2.0)

    return RunningServer(arch, listener.getsockname()[:2], stop)


def start_book_single(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_single.py: accept, converse, repeat."""
    return _threads("book-single", listener, 1)


def start_book_threaded(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_threaded.py: four threads blocked in accept()."""
    return _threads("book-threaded", listener, 4)


class _LegacyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _handle_conversation(self.request)


class _LegacyServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def start_book_legacy(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_legacy1.py: socketserver, an unbounded thread per connection."""
    server = _LegacyServer(listener.getsockname()[:2], _LegacyHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    thread = threading.Thread(target=server.serve_forever, name="zen-book-legacy", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(2.0)

    return RunningServer("book-legacy", listener.getsockname()[:2], stop)


def start_book_poll(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_async.py: a poll() loop with per-socket dicts, endswith framing."""
    wake_r, wake_w = socket.socketpair()
    listener.setblocking(False)

    def run() -> None:
        sockets = {listener.fileno(): listener}
        addresses: dict[socket.socket, Any] = {}
        bytes_received: dict[socket.socket, bytes] = {}
        bytes_to_send: dict[socket.socket, bytes] = {}
        poll = select.poll()
        poll.register(listener, select.POLLIN)
        poll.register(wake_r, select.POLLIN)
        try:
            while True:
                for fd, event in poll.poll():
                    if fd == wake_r.fileno():
                        return
                    sock = sockets.get(fd)
                    if sock is None:
                        continue
                    if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                        addresses.pop(sock, None)
                        bytes_received.pop(sock, None)
                        bytes_to_send.pop(sock, None)
                        poll.unregister(fd)
                        del sockets[fd]
                        sock.close()
                    elif sock is listener:
                        try:
                            new, address = sock.accept()
                        except BlockingIOError:
                            continue
                        new.setblocking(False)
                        sockets[new.fileno()] = new
                        addresses[new] = address
                        poll.register(new, select.POLLIN)
                    elif event & select.POLLIN:
                        more = sock.recv(4096)
                        if not more:
                            sock.close()
                            poll.unregister(fd)
                            del sockets[fd]
                            continue
                        data = bytes_received.pop(sock, b"") + more
                        if data.endswith(b"?"):
                            bytes_to_send[sock] = _get_answer(data)
                            poll.modify(sock, select.POLLOUT)
                        else:
                            bytes_received[sock] = data
                    elif event & select.POLLOUT:
                        data = bytes_to_send.pop(sock)
                        n = sock.send(data)
                        if n < len(data):
                            bytes_to_send[sock] = data[n:]
                        else:
                            poll.modify(sock, select.POLLIN)
        finally:
            for sock in sockets.values():
                sock.close()
            wake_r.close()

    thread = threading.Thread(target=run, name="zen-book-poll", daemon=True)
    thread.start()

    def stop() -> None:
        wake_w.send(b"x")
        thread.join(2.0)
        wake_w.close()

    return RunningServer("book-poll", listener.getsockname()[:2], stop)


class _BookProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.data = b""

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.data.endswith(b"?"):
            answer = _get_answer(self.data)
            self.transport.write(answer)  # type: ignore[attr-defined]
            self.data = b""


async def _book_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = b""
        while not data.endswith(b"?"):
            more = await reader.read(4096)
            if not more:
                return
            data += more
        writer.write(_get_answer(data))


def _asyncio(arch: str, listener: socket.socket, streams: bool) -> RunningServer:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop_event: list[asyncio.Event] = []

    async def main() -> None:
        stop = asyncio.Event()
        stop_event.append(stop)
        if streams:
            server = await asyncio.start_server(_book_streams, sock=listener)
        else:
            server = await loop.create_server(_BookProtocol, sock=listener)
        ready.set()
        await stop.wait()
        server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10.0)

    def stop() -> None:
        loop.call_soon_threadsafe(stop_event[0].set)
        thread.join(2.0)
        with contextlib.suppress(RuntimeError):
            loop.close()

    return RunningServer(arch, listener.getsockname()[:2], stop)


def start_book_asyncio1(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_asyncio1.py: a Protocol that buffers until the data ends with '?'."""
    return _asyncio("book-asyncio1", listener, streams=False)


def start_book_asyncio2(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_asyncio2.py, with async def: streams, no drain, endswith framing."""
    return _asyncio("book-asyncio2", listener, streams=True)


def start_book_asynchat(listener: socket.socket, config: ZenConfig) -> RunningServer:
    """srv_legacy2.py: asynchat with the terminator ``?``, unbounded buffers and output.

    asynchat splits on *every* terminator, so this one of the book's designs does answer
    pipelined questions; it has no limits and no timeouts.
    """
    # the asyncore/asynchat modules (or their backports), imported quietly there
    from wirelab.zen.legacy import asynchat, asyncore

    sockets: dict[int, Any] = {}
    stopping = threading.Event()

    class Chat(asynchat.async_chat):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__(sock, map=sockets)
            self.set_terminator(b"?")
            self.data = b""

        def collect_incoming_data(self, more: bytes) -> None:
            self.data += more

        def found_terminator(self) -> None:
            self.push(_get_answer(self.data + b"?"))
            self.data = b""

        def handle_error(self) -> None:
            self.close()

    class Acceptor(asyncore.dispatcher):
        def handle_accept(self) -> None:
            pair = self.accept()
            if pair is not None:
                Chat(pair[0])

    wake_r, wake_w = socket.socketpair()

    class Waker(asyncore.dispatcher):
        def writable(self) -> bool:
            return False

        def handle_read(self) -> None:
            stopping.set()

    acceptor = Acceptor(listener, map=sockets)
    acceptor.accepting = True
    waker = Waker(wake_r, map=sockets)

    def run() -> None:
        try:
            while not stopping.is_set():
                asyncore.poll2(1.0, sockets)
        finally:
            for dispatcher in list(sockets.values()):
                dispatcher.close()

    thread = threading.Thread(target=run, name="zen-book-asynchat", daemon=True)
    thread.start()

    def stop() -> None:
        wake_w.send(b"x")
        thread.join(2.0)
        wake_w.close()
        waker.close()

    return RunningServer("book-asynchat", listener.getsockname()[:2], stop)


#: The book's designs, by benchmark name.
BOOK_ARCHS = {
    "book-single": start_book_single,
    "book-threaded": start_book_threaded,
    "book-legacy": start_book_legacy,
    "book-poll": start_book_poll,
    "book-asyncio1": start_book_asyncio1,
    "book-asyncio2": start_book_asyncio2,
    "book-asynchat": start_book_asynchat,
}

#: The book's designs that split on every ``?`` and so can be run pipelined.
BOOK_PIPELINES = frozenset({"book-asynchat"})

#: Our architecture -> the book's version of it.
BOOK_OF = {
    "single": "book-single",
    "threadpool": "book-threaded",
    "threaded": "book-legacy",
    "selectors": "book-poll",
    "asyncore": "book-asynchat",
    "asyncio-protocol": "book-asyncio1",
    "asyncio-streams": "book-asyncio2",
}
