"""The cluster client against real memcached daemons: placement, failures, write checks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pymemcache.client.base import Client

from wirelab.cache.cluster import CacheCluster, Node, NodeDown, parse_servers
from wirelab.cache.daemon import MemcachedDaemon
from wirelab.cache.readthrough import ReadThroughCache, SquaresRound, run_squares
from wirelab.errors import ConfigError, ConnectError, LocalProtocolError, RemoteProtocolError


def test_parse_servers() -> None:
    assert parse_servers("10.0.0.1:11211, cache2 ,[::1]:11300") == [
        Node("10.0.0.1", 11211),
        Node("cache2", 11211),
        Node("::1", 11300),
    ]
    assert parse_servers([("127.0.0.1", 1), "::1"]) == [Node("127.0.0.1", 1), Node("::1", 11211)]
    with pytest.raises(ConfigError, match="listed twice"):
        parse_servers("a:1,a:1")
    with pytest.raises(ConfigError, match="no memcached server"):
        parse_servers(" , ")
    with pytest.raises(ConfigError):
        parse_servers("a:99999")


def test_values_land_where_the_ring_says(three_daemons: list[MemcachedDaemon]) -> None:
    """An independent client, connected to one node only, finds exactly that node's keys."""
    with CacheCluster([d.address for d in three_daemons], namespace="ring:") as cluster:
        for i in range(150):
            cluster.set(f"k{i}", str(i).encode())
        for node in cluster.nodes:
            direct = Client((node.host, node.port), timeout=2, connect_timeout=2)
            try:
                for i in range(150):
                    here = direct.get(cluster.wire_key(f"k{i}"))
                    owner = cluster.node_for(f"k{i}")
                    assert (here == str(i).encode()) == (owner == node)
            finally:
                direct.close()
        spread = {n: sum(cluster.node_for(f"k{i}") == n for i in range(150)) for n in cluster.nodes}
        assert all(count > 20 for count in spread.values()), spread


def test_node_killed_mid_run_is_reported_and_answers_stay_right(
    three_daemons: list[MemcachedDaemon],
) -> None:
    events: list[NodeDown] = []
    victim = three_daemons[1]

    def kill_after_first_round(done: SquaresRound) -> None:
        if done.number == 1:
            victim.kill()

    with CacheCluster(
        [d.address for d in three_daemons], namespace="kill:", on_node_down=events.append
    ) as cluster:
        report = run_squares(
            cluster,
            rounds=3,
            lookups=400,
            max_n=150,
            delay=0,
            seed=5,
            on_round=kill_after_first_round,
        )
        assert cluster.dead_nodes == (Node(*victim.address),)
        assert Node(*victim.address) not in cluster.live_nodes
    assert report.wrong == 0
    assert report.node_failures == 1
    assert [e.node for e in events] == [Node(*victim.address)]
    assert len(events[0].remaining) == 2 and "its keys now go to the other 2" in str(events[0])
    # The survivors keep their keys; the dead node's keys are recomputed once, then hit.
    assert report.rounds[-1].hit_ratio > 0.95


def test_every_node_down(three_daemons: list[MemcachedDaemon]) -> None:
    cluster = CacheCluster([d.address for d in three_daemons], namespace="down:")
    cluster.set("x", b"1")
    for daemon in three_daemons:
        daemon.kill()
    with pytest.raises(ConnectError, match="no memcached node is reachable"):
        cluster.get("x")
    with pytest.raises(ConnectError):
        cluster.ping()
    computed: list[int] = []
    cache = ReadThroughCache(cluster, lambda n: computed.append(n) or n * n)
    assert cache.get(7) == 49 and computed == [7]
    assert cache.stats.bypassed == 1 and cache.stats.hits == 0
    strict = ReadThroughCache(cluster, lambda n: n, fallback=False)
    with pytest.raises(ConnectError):
        strict.get(1)
    cluster.close()


def test_a_dead_node_comes_back_after_retry_dead(memcached: MemcachedDaemon) -> None:
    spare = MemcachedDaemon(port=0).start()
    port = spare.port
    try:
        cluster = CacheCluster([memcached.address, spare.address], retry_dead=0.2)
        keys = [f"back{i}" for i in range(60)]
        spare.kill()
        for key in keys:
            cluster.set(key, b"v")
        assert cluster.live_nodes == (Node(*memcached.address),)
        spare = MemcachedDaemon(port=port).start()
        time.sleep(0.25)
        owners = {cluster.node_for(k) for k in keys}
        assert Node("127.0.0.1", port) in owners
        assert len(cluster.live_nodes) == 2
        cluster.close()
    finally:
        spare.stop()


def test_no_server_is_an_error_not_a_silent_miss() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        CacheCluster([("127.0.0.1", port)]) as cluster,
        pytest.raises(ConnectError, match="connection refused"),
    ):
        cluster.ping()
    with CacheCluster([("127.0.0.1", port)]) as cluster, pytest.raises(ConnectError):
        cluster.set("k", b"v")  # the book's client "stored" this and returned 0


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts connections and never answers: a hung memcached."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_hung_node_is_down_after_the_timeout(
    silent_server: tuple[str, int], memcached: MemcachedDaemon
) -> None:
    events: list[NodeDown] = []
    with CacheCluster(
        [silent_server, memcached.address], timeout=0.3, on_node_down=events.append
    ) as cluster:
        hung = Node(*silent_server)
        key = next(f"h{i}" for i in range(100) if cluster.node_for(f"h{i}") == hung)
        began = time.monotonic()
        cluster.set(key, b"v")  # times out on the hung node, then goes to the live one
        assert time.monotonic() - began < 2
        assert [e.reason for e in events] == ["timed out"]
        assert cluster.get(key) == b"v"


def test_write_limits(memcached: MemcachedDaemon) -> None:
    with CacheCluster([memcached.address], namespace="big:") as cluster:
        with pytest.raises(LocalProtocolError, match="at most 1,048,576"):
            cluster.set("huge", b"x" * (2 << 20))
        with pytest.raises(RemoteProtocolError, match="SERVER_ERROR object too large"):
            cluster.set("almost", b"x" * ((1 << 20) - 16))  # item header + key do not fit
        with pytest.raises(LocalProtocolError, match="TTL"):
            cluster.set("k", b"v", ttl=-1)
        cluster.set("fits", b"x" * 500_000)
        assert cluster.get("fits") == b"x" * 500_000
        assert cluster.delete("fits") is True and cluster.get("fits") is None


def test_read_through_counts_and_recovers_from_foreign_values(memcached: MemcachedDaemon) -> None:
    with CacheCluster([memcached.address], namespace="rt:") as cluster:
        calls: list[int] = []

        def square(n: int) -> int:
            calls.append(n)
            return n * n

        cache = ReadThroughCache(cluster, square, prefix="sq:", ttl=60)
        assert [cache.get(n) for n in (3, 3, 4, 3)] == [9, 9, 16, 9]
        assert calls == [3, 4] and cache.stats.hits == 2 and cache.stats.misses == 2
        cluster.set("sq:5", b"not json{")  # someone else's bytes under our key
        assert cache.get(5) == 25 and cache.stats.misses == 3
        assert cluster.get("sq:5") == b"25"


def test_ipv6_loopback() -> None:
    with MemcachedDaemon(host="::1") as daemon, CacheCluster([daemon.address]) as cluster:
        assert cluster.nodes == (Node("::1", daemon.port),)
        cluster.set("six", b"6")
        assert cluster.get("six") == b"6"
        assert str(cluster.nodes[0]) == f"[::1]:{daemon.port}"


def test_a_server_that_is_not_memcached_is_a_protocol_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(5)

    def answer_nonsense() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            conn.recv(1024)
            conn.sendall(b"HELLO THERE\r\n")
            conn.recv(1024)  # until the client closes

    thread = threading.Thread(target=answer_nonsense)
    thread.start()
    try:
        with (
            CacheCluster([listener.getsockname()]) as cluster,
            pytest.raises(RemoteProtocolError, match="reply we cannot read"),
        ):
            cluster.get("k")
    finally:
        thread.join(5)
        listener.close()
