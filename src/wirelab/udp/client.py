"""Chapter 2 clients: request/reply with backoff, broadcast, and the path-MTU probe.

The request client ``connect()``-s its socket, so the kernel drops datagrams from anyone but
the server (the book's ``udp_local`` client took the first datagram from *any* sender). It
retries with exponential backoff and jitter (0.1 s doubling, giving up past 2 s, as the book),
and turns ICMP port-unreachable into :class:`~wirelab.errors.ConnectionRefused` instead of
crashing (the book's ``udp_remote`` did not handle it). On the wire it speaks the book's
protocol: the payload as it is, and any reply from the server is the answer. With
``tagged=True`` (``--request-id``) it numbers its request so that a late answer to an earlier
request is never taken for this one, against a server that echoes the number (ours).
"""

from __future__ import annotations

import errno
import random
import socket
import sys
import time
from dataclasses import dataclass

from wirelab.errors import (
    ConfigError,
    ConnectionRefused,
    LocalProtocolError,
    Timeout,
    TransportError,
)
from wirelab.net.addresses import bind_udp, connect_udp, format_address, parse_port
from wirelab.net.limits import MAX_UDP_PAYLOAD
from wirelab.net.retry import Backoff, retry
from wirelab.udp._core import MAX_REQUEST_ID, encode_request, parse_reply

__all__ = [
    "BOOK_BACKOFF",
    "MTUReport",
    "UDPReply",
    "listen_broadcast",
    "probe_mtu",
    "request",
    "send_broadcast",
]

#: The book's schedule: wait 0.1 s, doubling each time, and give up once the wait passes 2 s.
BOOK_BACKOFF = Backoff(initial=0.1, factor=2.0, cap=2.0, jitter=0.1)

# Linux socket options (the book inlined these from the old IN module).
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
_IP_MTU = getattr(socket, "IP_MTU", 14)


@dataclass(frozen=True)
class UDPReply:
    """The server's answer and how we got it."""

    text: str
    attempts: int
    seconds: float
    local: str
    server: str
    ignored: int


def request(
    host: str,
    port: int | str,
    payload: bytes,
    *,
    backoff: Backoff = BOOK_BACKOFF,
    tagged: bool = False,
    rng: random.Random | None = None,
) -> UDPReply:
    """Send ``payload`` and wait for the server's reply, retrying with backoff.

    Args:
        host: server name or address.
        port: port number or service name.
        payload: the request bytes (at most one datagram).
        backoff: the retry schedule; each attempt waits the current delay for a reply.
        tagged: tag the request with a random ID (``#<id> ``) and accept only the reply that
            echoes it; off by default, because the book's server does not echo IDs.
        rng: randomness for the request ID and the jitter (tests pass a seeded one).

    Raises:
        ConfigError: ``port`` is 0 (no server listens on port 0).
        LocalProtocolError: the payload does not fit in one datagram.
        RemoteProtocolError: ``tagged`` and the server's reply does not echo the tag.
        ConnectionRefused: nothing listens on that port (ICMP port unreachable).
        Timeout: no reply after every retry.
        NameResolutionError: the host name did not resolve.
    """
    if parse_port(port, "udp") == 0:
        raise ConfigError("port 0 is not a server's port: give the port the server listens on")
    rng = rng or random.Random()
    request_id = rng.randint(1, MAX_REQUEST_ID) if tagged else None
    datagram = encode_request(request_id, payload)
    began = time.monotonic()
    attempts = 0
    ignored = 0
    with connect_udp(host, port) as sock:
        local = format_address(sock.getsockname())
        server = format_address(sock.getpeername())

        def attempt(timeout: float) -> str:
            nonlocal attempts, ignored
            attempts += 1
            _send(sock, datagram, server)
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(f"no reply from {server} within {timeout:.2f} s")
                sock.settimeout(remaining)
                try:
                    data = sock.recv(MAX_UDP_PAYLOAD + 1)
                except TimeoutError as exc:
                    raise Timeout(f"no reply from {server} within {timeout:.2f} s") from exc
                except ConnectionRefusedError as exc:
                    raise ConnectionRefused(
                        f"network failure: nothing listens on UDP {server} (ICMP port unreachable)"
                    ) from exc
                text = parse_reply(data, request_id)
                if text is not None:
                    return text
                ignored += 1  # a late reply to an earlier request: not ours

        try:
            text = retry(attempt, backoff=backoff, retry_on=(Timeout,), rng=rng)
        except Timeout as exc:
            raise Timeout(f"the server at {server} seems to be down: {exc}") from exc
    return UDPReply(text, attempts, time.monotonic() - began, local, server, ignored)


def _send(sock: socket.socket, datagram: bytes, where: str) -> None:
    try:
        sock.send(datagram)
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(
            f"network failure: nothing listens on UDP {where} (ICMP port unreachable)"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.EMSGSIZE:
            raise LocalProtocolError(
                f"{len(datagram)} bytes is too long for one datagram on this path"
            ) from exc
        raise TransportError(f"cannot send to {where}: {exc.strerror or exc}") from exc


def send_broadcast(network: str, port: int | str, payload: bytes) -> str:
    """Send one datagram to a broadcast address (``SO_BROADCAST``); return where it went.

    On loopback, ``127.255.255.255`` reaches every socket bound to the port on ``""``.
    """
    number = parse_port(port, "udp")
    if number == 0:
        raise ConfigError("port 0 is not a destination: give a port number above 0")
    if len(payload) > MAX_UDP_PAYLOAD:
        raise LocalProtocolError(f"a UDP datagram carries at most {MAX_UDP_PAYLOAD} bytes")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.sendto(payload, (network, number))
        except OSError as exc:
            raise TransportError(
                f"cannot broadcast to {network}:{number}: {exc.strerror or exc}"
            ) from exc
    return f"{network}:{number}"


def listen_broadcast(
    interface: str, port: int | str, *, count: int = 1, timeout: float = 5.0
) -> list[tuple[str, bytes]]:
    """Receive up to ``count`` datagrams on ``interface``:``port``; ``""`` hears broadcasts.

    Returns the datagrams received before ``timeout`` seconds passed, with their senders.
    """
    received: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout
    with bind_udp(interface, port, broadcast=True) as sock:
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data, addr = sock.recvfrom(MAX_UDP_PAYLOAD + 1)
            except TimeoutError:
                break
            received.append((format_address(addr), data))
    return received


@dataclass(frozen=True)
class MTUReport:
    """What the path-MTU probe learned."""

    destination: str
    mtu: int
    max_payload: int
    too_big_refused: bool


def probe_mtu(host: str, port: int | str) -> MTUReport:
    """Ask Linux for the path MTU towards ``host`` with don't-fragment set.

    Sends one datagram of the largest size that fits (no reply is needed), then shows that
    one byte more is refused locally with EMSGSIZE, the book's ``big_sender.py`` lesson.

    Raises:
        ConfigError: not on Linux, or ``port`` is 0.
    """
    if not sys.platform.startswith("linux"):
        raise ConfigError("the path-MTU probe needs Linux (IP_MTU_DISCOVER and IP_MTU)")
    if parse_port(port, "udp") == 0:
        raise ConfigError("port 0 is not a destination: give a port number above 0")
    with connect_udp(host, port, family=socket.AF_INET) as sock:
        try:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
            mtu = sock.getsockopt(socket.IPPROTO_IP, _IP_MTU)
            destination = format_address(sock.getpeername())
        except OSError as exc:
            raise TransportError(
                f"cannot probe the path MTU to {host}: {exc.strerror or exc}"
            ) from exc
        max_payload = min(mtu - 28, MAX_UDP_PAYLOAD)  # 20 bytes IPv4 header + 8 bytes UDP
        # One byte more than fits: on a real link the MTU refuses it, on loopback UDP itself.
        oversize = max_payload + 1 if max_payload < MAX_UDP_PAYLOAD else MAX_UDP_PAYLOAD + 1
        try:
            sock.send(b"\0" * oversize)
            refused = False
        except OSError as exc:
            refused = exc.errno == errno.EMSGSIZE
    return MTUReport(destination, mtu, max_payload, refused)
