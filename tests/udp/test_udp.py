"""Chapter 2 over real loopback sockets: our server, our client, independent peers."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from wirelab.errors import (
    ConfigError,
    ConnectionRefused,
    LocalProtocolError,
    NameResolutionError,
    RemoteProtocolError,
    Timeout,
)
from wirelab.lab.state import ServiceView
from wirelab.net.retry import Backoff
from wirelab.udp import client as udp
from wirelab.udp._core import parse_reply, parse_request

FAST = Backoff(initial=0.02, factor=2.0, cap=0.1, jitter=0.0)


def stdlib_ask(address: tuple[str, int], data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(data, address)
        reply, peer = sock.recvfrom(65535)
        assert peer == address
        return reply


def test_lab_server_answers_stdlib_clients(lab_udp: ServiceView) -> None:
    address = lab_udp.address
    assert stdlib_ask(address, b"The time is now") == b"Your data was 15 bytes long"
    assert stdlib_ask(address, b"\xff\xfe\x00garbage") == b"Your data was 10 bytes long"
    assert stdlib_ask(address, b"") == b"Your data was 0 bytes long"
    assert stdlib_ask(address, b"#7 tagged") == b"#7 Your data was 6 bytes long"


def test_numbering_rejects_a_late_reply_from_our_server(lab_udp: ServiceView) -> None:
    """Ask #1, then #2 on one socket: our server's answer to #1 comes first. A plain client
    would take it for the answer to #2; a numbered one ignores it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(lab_udp.address)
        sock.settimeout(5)
        sock.send(b"#1 an old question")
        sock.send(b"#2 new")
        late, right = sock.recv(65535), sock.recv(65535)
    assert late == b"#1 Your data was 15 bytes long"
    assert right == b"#2 Your data was 3 bytes long"
    assert parse_reply(late, 2) is None
    assert parse_reply(right, 2) == "Your data was 3 bytes long"


def test_lossy_endpoint_drops_some_and_answers_others(lab_udp: ServiceView) -> None:
    address = lab_udp.endpoint("lossy").sockaddr
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        for i in range(40):
            sock.sendto(b"#%d x" % (i + 1), address)
            try:
                while parse_request(sock.recv(100)).request_id != i + 1:
                    pass
                answered += 1
            except TimeoutError:
                pass
    assert 5 < answered < 35, answered  # about half, with generous bounds


def test_our_client_against_the_lab(lab_udp: ServiceView) -> None:
    host, port = lab_udp.address
    reply = udp.request(host, port, b"hello")
    assert reply.text == "Your data was 5 bytes long"
    assert reply.attempts == 1
    tagged = udp.request(host, port, b"hello", tagged=True)
    assert tagged.text == "Your data was 5 bytes long"  # our server echoes the ID
    assert reply.local.startswith("127.0.0.1:")


def test_backoff_recovers_from_loss(lab_udp: ServiceView) -> None:
    host, port = lab_udp.endpoint("lossy").sockaddr
    # A constant, patient schedule: a request fails only if 20 datagrams in a row are dropped.
    patient = Backoff(initial=0.02, factor=1.0, cap=0.02, max_attempts=20, jitter=0.0)
    replies = [
        udp.request(host, port, b"x", backoff=patient, rng=random.Random(i)) for i in range(20)
    ]
    assert all(reply.text == "Your data was 1 bytes long" for reply in replies)
    # The server drops half: twenty first-time successes would mean nothing was retried.
    assert sum(reply.attempts for reply in replies) > len(replies)


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[socket.socket], None]], tuple[str, int]]]:
    """An independent UDP server written here with a raw socket, driven by a function."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def start(behaviour: Callable[[socket.socket], None]) -> tuple[str, int]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sockets.append(sock)
        thread = threading.Thread(target=behaviour, args=(sock,))
        thread.start()
        threads.append(thread)
        return sock.getsockname()

    yield start
    for thread in threads:
        thread.join(10)
    for sock in sockets:
        sock.close()


def test_late_reply_to_an_earlier_request_is_ignored(peer) -> None:  # type: ignore[no-untyped-def]
    def stale_then_right(sock: socket.socket) -> None:
        data, addr = sock.recvfrom(1000)
        request = parse_request(data)
        assert request.request_id is not None
        sock.sendto(b"#%d Your data was 99 bytes long" % (request.request_id ^ 1), addr)
        sock.sendto(b"#%d the right answer" % request.request_id, addr)

    host, port = peer(stale_then_right)
    reply = udp.request(host, port, b"q", backoff=FAST, tagged=True)
    assert reply.text == "the right answer"
    assert reply.ignored == 1


def test_plain_request_is_the_books_datagram_and_takes_its_reply(peer) -> None:  # type: ignore[no-untyped-def]
    seen: list[bytes] = []

    def book_server(sock: socket.socket) -> None:  # answers as the book's udp_remote.py
        data, addr = sock.recvfrom(65535)
        seen.append(data)
        sock.sendto(b"Your data was %d bytes long" % len(data), addr)

    host, port = peer(book_server)
    reply = udp.request(host, port, b"This is another message", backoff=FAST)
    assert seen == [b"This is another message"]  # no request number added
    assert reply.text == "Your data was 23 bytes long"


def test_tagged_request_to_a_server_that_does_not_echo_ids_says_so(peer) -> None:  # type: ignore[no-untyped-def]
    def book_server(sock: socket.socket) -> None:
        data, addr = sock.recvfrom(65535)
        sock.sendto(b"Your data was %d bytes long" % len(data), addr)

    host, port = peer(book_server)
    with pytest.raises(RemoteProtocolError, match="does not number its replies"):
        udp.request(host, port, b"q", backoff=FAST, tagged=True)


def test_client_retries_until_the_server_answers(peer) -> None:  # type: ignore[no-untyped-def]
    def answer_third(sock: socket.socket) -> None:
        for _ in range(2):
            sock.recvfrom(1000)  # "lost"
        _, addr = sock.recvfrom(1000)
        sock.sendto(b"ok", addr)

    host, port = peer(answer_third)
    reply = udp.request(host, port, b"q", backoff=FAST)
    assert reply.text == "ok" and reply.attempts == 3


def test_silent_server_times_out_after_the_schedule(peer) -> None:  # type: ignore[no-untyped-def]
    done = threading.Event()
    host, port = peer(lambda sock: done.wait(5))
    try:
        with pytest.raises(Timeout, match="seems to be down"):
            udp.request(host, port, b"q", backoff=FAST)
    finally:
        done.set()


def test_closed_port_is_refused_not_a_crash() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefused, match="ICMP port unreachable"):
        udp.request("127.0.0.1", port, b"q", backoff=FAST)


def test_bad_targets_are_typed_errors() -> None:
    with pytest.raises(NameResolutionError, match="name service failure"):
        udp.request("no-such-host.invalid", 1060, b"q", backoff=FAST)
    with pytest.raises(LocalProtocolError):
        udp.request("127.0.0.1", 1060, b"x" * 70_000, backoff=FAST)
    with pytest.raises(ConfigError, match="port 0 is not a server's port"):
        udp.request("127.0.0.1", 0, b"q", backoff=FAST)
    with pytest.raises(ConfigError, match="port 0 is not a destination"):
        udp.probe_mtu("127.0.0.1", 0)
    with pytest.raises(ConfigError, match="port 0 is not a destination"):
        udp.send_broadcast("127.255.255.255", 0, b"x")


def test_broadcast_reaches_a_wildcard_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    got: list[tuple[str, bytes]] = []
    listener = threading.Thread(
        target=lambda: got.extend(udp.listen_broadcast("", port, timeout=3))
    )
    listener.start()
    while listener.is_alive() and not got:
        udp.send_broadcast("127.255.255.255", port, b"Broadcast datagram!")
        listener.join(0.05)
    listener.join(5)
    assert got and got[0][1] == b"Broadcast datagram!"


def test_mtu_probe_on_loopback(lab_udp: ServiceView) -> None:
    report = udp.probe_mtu(*lab_udp.address)
    assert report.mtu >= 1500
    assert report.max_payload == min(report.mtu - 28, 65507)
    assert report.too_big_refused
