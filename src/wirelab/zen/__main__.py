"""``python -m wirelab.zen --arch NAME``: one server in its own process, for the benchmark.

Prints ``PORT <port> PIDS <pid,...>`` on standard output once it accepts connections, then
serves until SIGTERM or SIGINT. ``--arch`` also takes the book's designs (``book-single`` ...).
"""

from __future__ import annotations

import argparse
import logging
import resource
import signal
import sys

from wirelab.zen._core import ZenConfig


def main(argv: list[str] | None = None) -> None:
    """Start one architecture on loopback and serve until signalled."""
    parser = argparse.ArgumentParser(prog="python -m wirelab.zen")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument("--nofile", type=int, default=None, help="soft RLIMIT_NOFILE to set")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{args.arch}: %(name)s: %(message)s")
    if args.nofile:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(args.nofile, hard), hard))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    config = ZenConfig(workers=args.workers, idle_timeout=args.idle_timeout)
    if args.arch.startswith("book-"):
        from wirelab.net.addresses import listen_tcp
        from wirelab.zen.book import BOOK_ARCHS

        listener = listen_tcp(args.host, args.port, backlog=1024)
        server = BOOK_ARCHS[args.arch](listener, config)
    else:
        from wirelab.zen.archs import start_server

        server = start_server(args.arch, args.host, args.port, config)
    pids = server.pids or [__import__("os").getpid()]
    print(f"PORT {server.address[1]} PIDS {','.join(map(str, pids))}", flush=True)
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
