"""A test-only peer that behaves on the wire like the book's chapter 2 programs.

Written from the programs' behaviour (py3/chapter02 of the book's repository), not their
code. Run it as ``python book_udp.py PROGRAM ARGS...`` with the book script's own arguments:

* ``udp_local.py server|client`` - port 1060 on 127.0.0.1 (``BOOK_PORT`` overrides). The
  server answers each datagram with ``Your data was N bytes long`` (N = its length); it decodes
  the datagram as ASCII first, so a non-ASCII datagram kills it, as the book's. The client sends
  ``This message was generated at <datetime.now()>`` and waits for a reply from anyone, with
  no timeout (the book's "Danger!").
* ``udp_remote.py server|client HOST [-p PORT]`` - the server pretends to drop half of the
  datagrams (``random.random() < 0.5``; ``BOOK_SEED`` seeds it) and answers the rest as above;
  the client ``connect()``s, sends ``This is another message``, and waits 0.1 s, doubling,
  resending each time, until an answer comes or the wait passes 2 s (``RuntimeError: I think
  the server is down``).
* ``udp_broadcast.py server|client HOST [-p PORT]`` - the server prints every datagram; the
  client sends ``Broadcast datagram!`` once with ``SO_BROADCAST``.
* ``big_sender.py HOST [-p PORT]`` - sends one 999,999-byte datagram with don't-fragment set;
  the kernel refuses it and the program prints the path MTU.

Each writes its transcript (``book_wire``) and prints what the book's program prints.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
from datetime import datetime

from book_wire import book_port, log

BIGGEST = 65535


def _udp_server_loop(sock: socket.socket, drop: random.Random | None) -> None:
    while True:
        data, address = sock.recvfrom(BIGGEST)
        log("recv", data, address)
        if drop is not None and drop.random() < 0.5:
            print(f"Pretending to drop packet from {address}", flush=True)
            continue
        text = data.decode("ascii")  # the book's servers die on a non-ASCII datagram
        print(f"The client at {address} says {text!r}", flush=True)
        answer = f"Your data was {len(data)} bytes long".encode("ascii")
        sock.sendto(answer, address)
        log("send", answer, address)


def udp_local(argv: list[str]) -> None:
    port = book_port()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if argv == ["server"]:
        sock.bind(("127.0.0.1", port))
        print(f"Listening at {sock.getsockname()}", flush=True)
        _udp_server_loop(sock, None)
    elif argv == ["client"]:
        data = f"This message was generated at {datetime.now()}".encode("ascii")
        sock.sendto(data, ("127.0.0.1", port))
        log("send", data, ("127.0.0.1", port))
        print(f"The OS assigned me the address {sock.getsockname()}", flush=True)
        reply, address = sock.recvfrom(BIGGEST)  # from anyone, and no timeout
        log("recv", reply, address)
        print(f"The server {address} replied {reply.decode('ascii')!r}", flush=True)
    else:
        print("usage: udp_local.py (server|client)", file=sys.stderr)


def udp_remote(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["client", "server"])
    parser.add_argument("host")
    parser.add_argument("-p", type=int, default=1060)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.role == "server":
        sock.bind((args.host, args.p))
        print("Listening at", sock.getsockname(), flush=True)
        seed = os.environ.get("BOOK_SEED")
        _udp_server_loop(sock, random.Random(int(seed)) if seed else random.Random())
        return
    sock.connect((args.host, args.p))
    print(f"Client socket name is {sock.getsockname()}", flush=True)
    data = b"This is another message"
    wait = 0.1
    while True:
        sock.send(data)
        log("send", data, sock.getpeername())
        print(f"Waiting up to {wait} seconds for a reply", flush=True)
        sock.settimeout(wait)
        try:
            reply = sock.recv(BIGGEST)
        except TimeoutError as exc:
            wait *= 2
            if wait > 2.0:
                raise RuntimeError("I think the server is down") from exc
            continue
        log("recv", reply, sock.getpeername())
        break
    print(f"The server says {reply.decode('ascii')!r}", flush=True)


def udp_broadcast(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["client", "server"])
    parser.add_argument("host")
    parser.add_argument("-p", type=int, default=1060)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.role == "server":
        sock.bind((args.host, args.p))
        print(f"Listening for datagrams at {sock.getsockname()}", flush=True)
        while True:
            data, address = sock.recvfrom(BIGGEST)
            log("recv", data, address)
            print(f"The client at {address} says: {data.decode('ascii')!r}", flush=True)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    data = b"Broadcast datagram!"
    sock.sendto(data, (args.host, args.p))
    log("send", data, (args.host, args.p))


def big_sender(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("-p", type=int, default=1060)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    sock.connect((args.host, args.p))
    try:
        sock.send(b"#" * 999999)
    except OSError:
        print("Alas, the datagram did not make it")
        print(f"Actual MTU: {sock.getsockopt(socket.IPPROTO_IP, 14)}")  # IP_MTU
    else:
        print("The big datagram was sent!")


PROGRAMS = {
    "udp_local.py": udp_local,
    "udp_remote.py": udp_remote,
    "udp_broadcast.py": udp_broadcast,
    "big_sender.py": big_sender,
}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](sys.argv[2:])
