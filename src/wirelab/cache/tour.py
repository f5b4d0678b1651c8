"""Chapter 8 in the tour: memcached (read-through, sharding, failures) and ZeroMQ pipelines.

One chapter for both packages, as in the book: the cache steps use :mod:`wirelab.cache`
against the lab's memcached, the queue steps use :mod:`wirelab.queue`. If memcached cannot run
on this machine, the cache steps fail with the lab's one-line reason (and the install hint).
"""

from __future__ import annotations

import secrets
import socket
from typing import TYPE_CHECKING

from wirelab.errors import ConfigError, ConnectError, LocalProtocolError, Timeout
from wirelab.lab.tour import Chapter, TourContext

if TYPE_CHECKING:
    from wirelab.cache.cluster import CacheCluster

CHAPTER = Chapter(
    8,
    "Caches and message queues",
    "memcached in front of slow work, keys spread by consistent hashing, and a ZeroMQ "
    "pipeline without a broker.",
)


def _cluster(ctx: TourContext, namespace: str = "") -> CacheCluster:
    from wirelab.cache.cluster import CacheCluster
    from wirelab.cache.service import lab_nodes

    try:
        nodes = lab_nodes(ctx.lab)
    except ConfigError as exc:  # memcached unavailable here: say why, in one line
        ctx.check(False, str(exc))
        raise
    return CacheCluster(nodes, namespace=namespace, on_node_down=lambda e: ctx.say(str(e)))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@CHAPTER.step("a read-through cache warms up: hits rise and rounds get faster")
def _squares(ctx: TourContext) -> None:
    from wirelab.cache.readthrough import run_squares

    with _cluster(ctx, f"tour{secrets.token_hex(3)}:") as cluster:
        report = run_squares(cluster, rounds=4, lookups=300, max_n=300, delay=0.002, seed=8)
    for r in report.rounds:
        ctx.say(
            f"round {r.number}: {r.lookups} lookups in {r.seconds:.3f} s, hits {r.hit_ratio:.0%}"
        )
    ctx.say(f"hit ratio {report.hit_ratio:.1%}; speed-up first to last round {report.speedup:.1f}x")
    ctx.check(report.wrong == 0, f"{report.wrong} wrong answers came out of the cache")
    ctx.check(report.rounds[-1].hit_ratio > report.rounds[0].hit_ratio, "hits did not rise")
    ctx.check(report.speedup > 1.5, f"the warm cache was not faster ({report.speedup:.2f}x)")


@CHAPTER.step("failures are seen: no server, a value over 1 MiB, keys with spaces")
def _failures(ctx: TourContext) -> None:
    from wirelab.cache.cluster import CacheCluster

    port = _closed_port()
    with CacheCluster([("127.0.0.1", port)]) as nowhere:
        try:
            nowhere.ping()
        except ConnectError as exc:
            ctx.say(f"no server: {exc}")
        else:
            ctx.check(False, "a cache with no server claimed to work (the book's silent failure)")
    with _cluster(ctx, "tour:") as cluster:
        try:
            cluster.set("big", b"x" * (2 << 20))
        except LocalProtocolError as exc:
            ctx.say(f"2 MiB value: {exc}")
        else:
            ctx.check(False, "a 2 MiB value was accepted")
        cluster.set("a key with spaces", b"kept")
        ctx.say(f"'a key with spaces' is stored as {cluster.wire_key('a key with spaces')!r}")
        ctx.check(cluster.get("a key with spaces") == b"kept", "the hashed key lost its value")


@CHAPTER.step("sharding: modulo moves most keys when a server is added, ketama about 1/N")
def _shards(ctx: TourContext) -> None:
    from wirelab.cache.shards import compare_schemes
    from wirelab.cache.words import make_words

    report = compare_schemes(make_words(4000), 4, ["alphabetic", "md5-mod", "ketama"])
    for s in report.schemes:
        ctx.say(
            f"{s.name:<11} busiest/fair {s.imbalance:.2f}  moved 4->5: {s.moved_on_add:.0%}  "
            f"4->3: {s.moved_on_remove:.0%}"
        )
    by = {s.name: s for s in report.schemes}
    ctx.check(by["md5-mod"].moved_on_add > 0.6, "modulo hashing moved too few keys")
    ctx.check(by["ketama"].moved_on_add < 0.3, "consistent hashing moved too many keys")
    ctx.check(by["alphabetic"].imbalance > 1.2, "first letters spread evenly?")


@CHAPTER.step("a memcached node dies mid-run: the client says so and stays correct")
def _node_dies(ctx: TourContext) -> None:
    from wirelab.cache.cluster import CacheCluster
    from wirelab.cache.daemon import MemcachedDaemon
    from wirelab.cache.readthrough import SquaresRound, run_squares

    daemons = [MemcachedDaemon(port=0) for _ in range(3)]
    try:
        for daemon in daemons:
            daemon.start()
        ctx.say("three memcached daemons: " + ", ".join(f"{d.host}:{d.port}" for d in daemons))

        def kill_one(done: SquaresRound) -> None:
            if done.number == 1:
                ctx.say(f"killing memcached {daemons[1].port} (pid {daemons[1].pid})")
                daemons[1].kill()

        with CacheCluster(
            [d.address for d in daemons], on_node_down=lambda e: ctx.say(str(e))
        ) as cluster:
            report = run_squares(
                cluster, rounds=3, lookups=300, max_n=200, delay=0.0005, seed=3, on_round=kill_one
            )
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            daemon.stop()
    ctx.say(
        f"hits per round: {', '.join(f'{r.hit_ratio:.0%}' for r in report.rounds)}; "
        f"wrong answers: {report.wrong}"
    )
    ctx.check(report.node_failures == 1, f"{report.node_failures} node failures reported, not 1")
    ctx.check(report.wrong == 0, "the cache gave a wrong answer after the node died")
    ctx.check(report.rounds[-1].hit_ratio > 0.5, "the remaining nodes did not keep serving")


@CHAPTER.step("ZeroMQ: PUB/SUB prefix filters, REQ/REP and PUSH/PULL estimate pi")
def _pi(ctx: TourContext) -> None:
    from wirelab.queue.pipeline import run_pi

    book = run_pi(5000, seed=8)
    ctx.say(
        f"the book's wire: pi ~ {book.estimate:.5f} from {book.tallied:,} points, "
        f"{book.messages:,} messages (one point, one Y/N each), "
        f"{book.points_per_second:,.0f} points/s"
    )
    ctx.check(book.tallied == 5000 and book.error < 0.1, f"the book's wire gave {book.estimate}")
    for transport in ("tcp", "inproc"):
        result = run_pi(200_000, transport=transport, wire="batch", seed=8)
        ctx.say(
            f"batched, {transport:<6}: pi ~ {result.estimate:.5f} (off by {result.error:.5f}), "
            f"{result.messages:,} messages, {result.points_per_second:,.0f} points/s"
        )
        ctx.check(result.error < 0.01, f"the estimate {result.estimate} is not within 0.01")
    ctx.say(f"points per topic: {result.published}")


@CHAPTER.step("no slow joiner: every published message reaches its subscriber")
def _no_loss(ctx: TourContext) -> None:
    from wirelab.queue.pipeline import run_pi

    result = run_pi(3000, transport="tcp", wire="batch", batch=1, seed=1)
    published = sum(result.published.values())
    ctx.say(f"published {published:,} one-point messages; the tally counted {result.tallied:,}")
    ctx.check(published == result.tallied == 3000, "points were lost between PUB and SUB")


@CHAPTER.step("the lab's pythagoras service answers the book's [x, y], and refuses bad requests")
def _pythagoras(ctx: TourContext) -> None:
    import zmq

    from wirelab.queue.pythagoras import ask_pythagoras
    from wirelab.queue.sockets import make_socket, tcp_endpoint

    ep = ctx.lab.endpoint("queue", "rep")
    where = tcp_endpoint(ep.address, ep.port)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sums = ask_pythagoras(context, where, [(3, 4), (5, 12)])  # the book's [x, y] requests
        ctx.say(f"{where}: [3, 4] -> {sums[0]}, [5, 12] -> {sums[1]} (the book's wire)")
        ctx.check(sums == [25, 169], f"wrong sums {sums}")
        req = make_socket(context, zmq.REQ)
        try:
            req.connect(where)
            req.send(b'{"points": "all of them"}')
            ctx.check(req.poll(5000), "no answer to a bad request")
            ctx.say(f"a bad request gets: {req.recv().decode()}")
        finally:
            req.close(linger=0)
    finally:
        context.term()


@CHAPTER.step("a dead service: the pipeline times out cleanly, naming it")
def _dead(ctx: TourContext) -> None:
    from wirelab.queue.pipeline import run_pi

    dead = f"tcp://127.0.0.1:{_closed_port()}"
    try:
        run_pi(2000, pythagoras=[dead], timeout=1.0)
    except Timeout as exc:
        ctx.say(f"error: {exc}")
        return
    ctx.check(False, "a pipeline with no pythagoras service finished")


CHAPTERS = (CHAPTER,)
