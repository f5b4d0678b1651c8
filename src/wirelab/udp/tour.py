"""Chapter 2 in the tour: datagrams, filtering, loss and backoff, broadcast, MTU."""

from __future__ import annotations

import random
import socket
import threading

from wirelab.errors import ConnectionRefused, Timeout
from wirelab.lab.tour import Chapter, TourContext
from wirelab.net.addresses import bind_udp, format_address
from wirelab.udp import client as udp
from wirelab.udp._core import encode_request, parse_reply

CHAPTER = Chapter(
    2,
    "UDP",
    "Datagrams have no connection: the client must filter who answers, time out and retry.",
)


@CHAPTER.step("a client gets its answer, from an ephemeral port the OS chose")
def _answer(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("udp").sockaddr
    reply = udp.request(host, port, b"The time is now")
    ctx.say(f"The OS assigned me the address {reply.local}")
    ctx.say(f"The server {reply.server} replied {reply.text!r}")
    ctx.check(reply.text == "Your data was 15 bytes long", f"unexpected reply {reply.text!r}")


@CHAPTER.step("numbered requests (opt-in): our server echoes the number, the book's does not")
def _numbered(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("udp").sockaddr
    reply = udp.request(host, port, b"The time is now", tagged=True)
    ctx.say("with --request-id the client sends '#<id> The time is now' and our server answers")
    ctx.say(f"'#<id> {reply.text}': the client takes only the reply with its own number")
    ctx.check(reply.text == "Your data was 15 bytes long", f"unexpected reply {reply.text!r}")
    ctx.say("by default it sends the book's bytes, which the book's server answers unnumbered")
    # The late reply: ask #1, give up on it, ask #2 on the same socket; #1's answer arrives first.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.settimeout(2.0)
        sock.send(encode_request(1, b"an old question"))
        sock.send(encode_request(2, b"new"))
        first, second = sock.recv(65535), sock.recv(65535)
    ctx.say(f"asked #1, then #2 on one socket; the first datagram back was {first!r}")
    ctx.say(
        f"unnumbered, that is taken as the answer to 'new'; numbered, it is ignored "
        f"({parse_reply(first, 2)!r}) and {parse_reply(second, 2)!r} is the answer"
    )
    ctx.check(
        parse_reply(first, 2) is None and parse_reply(second, 2) == "Your data was 3 bytes long",
        "numbering did not tell the late reply from the right one",
    )


@CHAPTER.step("connect() filters out a stranger's datagram")
def _filtering(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("udp").sockaddr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.connect((host, port))
        me = client.getsockname()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"FAKE reply", me)
        client.send(b"hello")
        client.settimeout(2.0)
        data = client.recv(65535)
    ctx.say(f"a stranger sent 'FAKE reply' to {format_address(me)} first")
    ctx.say(f"the connected socket received only the server's {data.decode()!r}")
    ctx.check(data == b"Your data was 5 bytes long", f"got {data!r}")


@CHAPTER.step("a lossy server: timeouts and exponential backoff recover")
def _backoff(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("udp", "lossy").sockaddr
    wanted, limit = 4, 10
    attempts: list[int] = []
    gave_up = 0
    rng = random.Random(2)
    # The server drops half: a request meets five silences in a row 1 time in 32, and then the
    # book's schedule gives up. Ask until four got through, as a user would re-run it.
    for _ in range(limit):
        if len(attempts) == wanted:
            break
        try:
            reply = udp.request(host, port, b"are you there?", rng=rng)
        except Timeout:
            gave_up += 1
            continue
        ctx.check(reply.text == "Your data was 14 bytes long", f"wrong reply {reply.text!r}")
        attempts.append(reply.attempts)
    ctx.say(f"four requests to a server that drops half: attempts needed {attempts}")
    if gave_up:
        ctx.say(f"{gave_up} more met five silences in a row and gave up after 3.1 s, as the book's")
    ctx.check(len(attempts) == wanted, f"only {len(attempts)} of {limit} requests got through")


@CHAPTER.step("a closed port answers with ICMP port unreachable, reported clearly")
def _refused(ctx: TourContext) -> None:
    with bind_udp("127.0.0.1", 0) as probe:
        closed = probe.getsockname()[1]
    try:
        udp.request("127.0.0.1", closed, b"anyone?")
    except ConnectionRefused as exc:
        ctx.say(f"error: {exc}")
        return
    ctx.check(False, "a request to a closed port did not fail")


@CHAPTER.step("a broadcast reaches a listener bound to every address")
def _broadcast(ctx: TourContext) -> None:
    with bind_udp("127.0.0.1", 0) as probe:
        port = probe.getsockname()[1]
    got: list[tuple[str, bytes]] = []
    listener = threading.Thread(
        target=lambda: got.extend(udp.listen_broadcast("", port, timeout=3.0))
    )
    listener.start()
    for _ in range(30):  # resend until the listener has bound (no reply exists to wait for)
        udp.send_broadcast("127.255.255.255", port, b"Broadcast datagram!")
        listener.join(0.1)
        if not listener.is_alive():
            break
    listener.join(5.0)
    ctx.check(got, "the broadcast did not arrive")
    sender, data = got[0]
    ctx.say(f"the listener on port {port} heard {data.decode()!r} from {sender}")


@CHAPTER.step("the path-MTU probe (Linux): how big a datagram may be")
def _mtu(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("udp").sockaddr
    report = udp.probe_mtu(host, port)
    ctx.say(f"path MTU to {report.destination}: {report.mtu} bytes (loopback)")
    ctx.say(
        f"largest UDP payload: {report.max_payload}; one byte more refused: "
        f"{report.too_big_refused}"
    )
    ctx.check(report.too_big_refused, "an oversized datagram was not refused")


CHAPTERS = (CHAPTER,)
