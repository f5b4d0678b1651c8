"""A test-only peer that behaves on the wire like the book's chapter 5 programs.

Written from the programs' behaviour (py3/chapter05 of the book's repository), not their
code. Run it as ``python book_framing.py PROGRAM server|client [HOST]``; the port is the
book's fixed 1060 unless ``BOOK_PORT`` says otherwise:

* ``streamer.py`` - the client connects, ``shutdown(SHUT_RD)``, sends the three Zen lines
  (each ending in a newline) and closes, never reading. The server accepts one connection,
  ``shutdown(SHUT_WR)`` at once, reads 8192 bytes at a time to end-of-file, prints the
  message and exits.
* ``blocks.py`` - each block is a 4-byte big-endian length (``!I``) and the bytes; the client
  connects, ``shutdown(SHUT_RD)``, sends the three Zen lines as blocks (no newlines), each
  header and payload in one ``send``, then an empty block, and closes. The server accepts one
  connection, ``shutdown(SHUT_WR)`` at once, reads blocks until the empty one (a connection
  that closes first raises ``EOFError``: the server dies) and exits.

Each writes its transcript (``book_wire``) and prints what the book's program prints.
"""

from __future__ import annotations

import socket
import struct
import sys

from book_wire import book_port, log

ZEN = (b"Beautiful is better than ugly.", b"Explicit is better than implicit.")
ZEN += (b"Simple is better than complex.",)
HEADER = struct.Struct("!I")


def _accept_one(host: str) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, book_port()))
    listener.listen(1)
    print("Listening at", listener.getsockname(), flush=True)
    conn, peer = listener.accept()
    log("accept", peer=peer)
    print("Accepted connection from", peer, flush=True)
    listener.close()
    conn.shutdown(socket.SHUT_WR)
    log("shutdown_wr")
    return conn


def _connect(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((host, book_port()))
    sock.shutdown(socket.SHUT_RD)
    log("shutdown_rd")
    return sock


def _send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)
    log("send", data)


def streamer(role: str, host: str) -> None:
    if role == "server":
        conn = _accept_one(host)
        message = b""
        while more := conn.recv(8192):
            log("recv", more)
            message += more
        log("eof")
        print("Done receiving the message; it says:")
        print(message.decode("ascii"), flush=True)
        conn.close()
        log("close")
        return
    sock = _connect(host)
    for line in ZEN:
        _send(sock, line + b"\n")
    sock.close()
    log("close")


def _exactly(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        more = sock.recv(size - len(got))
        if not more:
            log("eof")
            raise EOFError(f"socket closed {len(got)} bytes into a {size}-byte message")
        log("recv", more)
        got += more
    return got


def blocks(role: str, host: str) -> None:
    if role == "server":
        conn = _accept_one(host)
        while True:
            (length,) = HEADER.unpack(_exactly(conn, HEADER.size))
            message = _exactly(conn, length)
            if not message:
                break
            print("Message says:", repr(message), flush=True)
        conn.close()
        log("close")
        return
    sock = _connect(host)
    for message in (*ZEN, b""):
        sock.send(HEADER.pack(len(message)) + message)  # one send, as the book's
        log("send", HEADER.pack(len(message)) + message)
    sock.close()
    log("close")


PROGRAMS = {"streamer.py": streamer, "blocks.py": blocks}

if __name__ == "__main__":
    args = sys.argv[2:]
    target = args.pop() if len(args) == 2 else "127.0.0.1"
    if args not in (["server"], ["client"]):
        print(f"usage: {sys.argv[1]} server|client [host]", file=sys.stderr)
        sys.exit(2)
    PROGRAMS[sys.argv[1]](args[0], target)
