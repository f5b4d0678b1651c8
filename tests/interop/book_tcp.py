"""A test-only peer that behaves on the wire like the book's chapter 3 programs.

Written from the programs' behaviour (py3/chapter03 of the book's repository), not their
code. Run it as ``python book_tcp.py PROGRAM ARGS...`` with the book script's own arguments:

* ``tcp_sixteen.py server|client HOST [-p PORT]`` - the client sends ``Hi there, server``
  and reads exactly 16 bytes; the server reads exactly 16, answers ``Farewell, client`` and
  closes, one connection at a time. A connection that closes before 16 bytes raises
  ``EOFError`` out of the server's loop: the book's server dies on it.
* ``tcp_deadlock.py server|client HOST [BYTECOUNT] [-p PORT]`` - the client sends BYTECOUNT
  (rounded up to 16) bytes of ``capitalize this!``, ``shutdown(SHUT_WR)``, then reads 42 bytes
  at a time until end-of-file, with no timeout; the server reads 1024 bytes at a time and
  sends each back upper-cased (decoding it as ASCII first) until end-of-file, then closes.

Each writes its transcript (``book_wire``) and prints what the book's program prints.
"""

from __future__ import annotations

import argparse
import socket
import sys

from book_wire import log


def _exactly(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        more = sock.recv(size - len(got))
        if not more:
            log("eof")
            raise EOFError(
                f"was expecting {size} bytes but only received {len(got)} bytes "
                "before the socket closed"
            )
        log("recv", more)
        got += more
    return got


def _args(argv: list[str], bytecount: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["client", "server"])
    parser.add_argument("host")
    if bytecount:
        parser.add_argument("bytecount", type=int, nargs="?", default=16)
    parser.add_argument("-p", type=int, default=1060)
    return parser.parse_args(argv)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    print("Listening at", sock.getsockname(), flush=True)
    return sock


def tcp_sixteen(argv: list[str]) -> None:
    args = _args(argv, bytecount=False)
    if args.role == "server":
        listener = _listen(args.host, args.p)
        while True:
            conn, peer = listener.accept()
            log("accept", peer=peer)
            print("We have accepted a connection from", peer, flush=True)
            message = _exactly(conn, 16)  # EOFError here ends the server, as the book's
            print("  Incoming sixteen-octet message:", repr(message), flush=True)
            conn.sendall(b"Farewell, client")
            log("send", b"Farewell, client")
            conn.close()
            log("close")
            print("  Reply sent, socket closed", flush=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((args.host, args.p))
    print("Client has been assigned socket name", sock.getsockname(), flush=True)
    sock.sendall(b"Hi there, server")
    log("send", b"Hi there, server")
    reply = _exactly(sock, 16)
    print("The server said", repr(reply), flush=True)
    sock.close()
    log("close")


def tcp_deadlock(argv: list[str]) -> None:
    args = _args(argv, bytecount=True)
    if args.role == "server":
        listener = _listen(args.host, args.p)
        while True:
            conn, peer = listener.accept()
            log("accept", peer=peer)
            print("Processing up to 1024 bytes at a time from", peer, flush=True)
            while data := conn.recv(1024):
                log("recv", data)
                upper = data.decode("ascii").upper().encode("ascii")
                conn.sendall(upper)
                log("send", upper)
            log("eof")
            conn.close()
            log("close")
            print("  Socket closed", flush=True)
    total = (args.bytecount + 15) // 16 * 16
    print("Sending", total, "bytes of data, in chunks of 16 bytes", flush=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no timeout, as the book's
    sock.connect((args.host, args.p))
    for _ in range(total // 16):
        sock.sendall(b"capitalize this!")
        log("send", b"capitalize this!")
    sock.shutdown(socket.SHUT_WR)
    log("shutdown_wr")
    print("Receiving all the data the server sends back", flush=True)
    received = 0
    while True:
        data = sock.recv(42)
        if not received:
            print("  The first data received says", repr(data), flush=True)
        if not data:
            log("eof")
            break
        log("recv", data)
        received += len(data)
    print(f"  {received} bytes received", flush=True)
    sock.close()
    log("close")


PROGRAMS = {"tcp_sixteen.py": tcp_sixteen, "tcp_deadlock.py": tcp_deadlock}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](sys.argv[2:])
