"""Chapter 3 in the tour: a stream of bytes, socket names, half-close and the deadlock."""

from __future__ import annotations

import socket
import time

from wirelab.errors import ConnectionRefused
from wirelab.lab.tour import Chapter, TourContext
from wirelab.tcp import client as tcp
from wirelab.tcp._core import REQUEST
from wirelab.tcp.deadlock import Stalled, deadlock

CHAPTER = Chapter(
    3,
    "TCP",
    "A connection carries a stream, not messages: read until you have enough, and never let "
    "both sides wait to write.",
)

#: Enough to fill the kernel buffers of both directions on loopback (about 9 MB on Linux).
BIG = 32 << 20


@CHAPTER.step("16 bytes out, 16 back, and the names of both ends")
def _sixteen(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("tcp", "sixteen").sockaddr
    reply = tcp.exchange(host, port)
    ctx.say(f"Client has been assigned socket name {reply.local}")
    ctx.say(f"its peer name is the server's listening address {reply.server}")
    ctx.say(f"The server said {reply.text!r}")
    ctx.check(reply.reply == b"Farewell, client", f"unexpected reply {reply.reply!r}")


@CHAPTER.step("the message may arrive in pieces; the server reads until it has all 16")
def _pieces(ctx: TourContext) -> None:
    address = ctx.lab.endpoint("tcp", "sixteen").sockaddr
    with socket.create_connection(address, timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (REQUEST[:5], REQUEST[5:11], REQUEST[11:]):
            sock.sendall(piece)
            time.sleep(0.05)
        reply = b""
        while len(reply) < 16:
            data = sock.recv(16 - len(reply))
            if not data:
                break
            reply += data
    ctx.say("sent 'Hi th', 'ere, s', 'erver' as three separate segments, 50 ms apart")
    ctx.say(f"the server waited for all 16 bytes and answered {reply.decode()!r}")
    ctx.check(reply == b"Farewell, client", f"got {reply!r}")


@CHAPTER.step("a client that stalls or quits early holds up nobody else")
def _bad_clients(ctx: TourContext) -> None:
    address = ctx.lab.endpoint("tcp", "sixteen").sockaddr
    with socket.create_connection(address, timeout=5) as stalled:
        stalled.sendall(b"Hi th")  # 5 bytes, then silence: the server waits for 11 more
        with socket.create_connection(address, timeout=5) as quitter:
            quitter.sendall(b"Hi th")
        reply = tcp.exchange(*address)
        ctx.say("one client sent 5 bytes and went quiet; another sent 5 bytes and closed")
        ctx.say("the server logs 'peer closed after 5 of 16 bytes' for the second")
        ctx.say(f"and a third client still got {reply.text!r}")
        ctx.check(reply.reply == b"Farewell, client", f"got {reply.reply!r}")


@CHAPTER.step("the naive client sends everything before reading: deadlock, detected")
def _naive(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("tcp", "upper").sockaddr
    began = time.monotonic()
    try:
        report = deadlock(host, port, BIG, "naive", stall=2.0)
    except Stalled as exc:
        ctx.say(f"error: {exc}")
        ctx.say(
            f"the watchdog gave up after {time.monotonic() - began:.1f} s: the client's and "
            f"the server's buffers held {exc.sent / 1e6:.1f} MB and nobody could move"
        )
        ctx.check(0 < exc.sent < BIG, f"stalled after {exc.sent} bytes")
        return
    ctx.check(False, f"{report.bytecount} bytes went through without a deadlock")


@CHAPTER.step("half-close ends the request while the client still reads (small data only)")
def _halfclose(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("tcp", "upper").sockaddr
    report = deadlock(host, port, 64 << 10, "halfclose")
    ctx.say(
        f"sent {report.bytecount} bytes, shutdown(SHUT_WR), read {report.received} back "
        "until the server closed"
    )
    ctx.say("it works because 64 KiB fits in the buffers; 32 MiB would stall like the naive one")
    ctx.check(report.verified, "the echo was incomplete")


@CHAPTER.step("sending and reading at the same time never deadlocks")
def _concurrent(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("tcp", "upper").sockaddr
    report = deadlock(host, port, BIG, "concurrent")
    ctx.say(
        f"sent {report.bytecount} bytes and read {report.received} back in "
        f"{report.seconds:.2f} s, every byte checked: 'CAPITALIZE THIS!'"
    )
    ctx.check(report.verified, "the echo was incomplete")


@CHAPTER.step("a port with no listener refuses the connection")
def _refused(ctx: TourContext) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    try:
        tcp.exchange("127.0.0.1", closed)
    except ConnectionRefused as exc:
        ctx.say(f"error: {exc}")
        return
    ctx.check(False, "a connection to a closed port succeeded")


CHAPTERS = (CHAPTER,)
