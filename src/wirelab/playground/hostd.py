"""Servers the playground runs inside its hosts.

``python -m wirelab.playground.hostd dns``: the backbone's DNS is the lab's own DNS server
(:mod:`wirelab.dns.server`) with the playground's zone: every host of the book's
``dns/hosts`` under ``example.com`` with its playground address, the MX and CNAME records of
``mx-entries``, all in one loaded place (the book's split configuration may never have loaded
its second file).

``python -m wirelab.playground.hostd lab PREFIX HOME HOST=SERVICE,... ...``: the lab's own
services (:mod:`wirelab.lab.registry`: ``smtp``, ``pop3``, ``imap``, ``www``, ``ssh``,
``telnet``, ``ftp`` ...) on the book's ports (25, 110/995, 143/993, 80/443, 22, 23, 21),
each bound inside its host. One process serves every host: for each host a thread enters
the host's network namespace (``setns``) and starts a :class:`~wirelab.lab.supervisor.LabThread`
from there, so the lab's loop thread, its worker threads and its child processes (gunicorn)
all live in that namespace, and every socket they open is the host's. Network namespaces
are per thread in Linux; the process's main thread stays in the namespace ``ip netns exec``
gave it, so the playground's clean-up (by ``/proc/PID/ns/net``) finds it.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wirelab.dns.zone import DEFAULT_TTL, NAME_SERVER, ORIGIN, Record, Zone
from wirelab.errors import ConfigError, WirelabError
from wirelab.lab.service import LabContext
from wirelab.playground.topology import HOSTS

if TYPE_CHECKING:
    from wirelab.lab.supervisor import LabThread

__all__ = [
    "BOOK_PORTS",
    "READY",
    "BookPortsLab",
    "enter_netns",
    "main",
    "playground_zone",
    "serve_lab",
]

#: The ports of the book's server room (the lab shifts those below 1024 by 10000).
BOOK_PORTS: dict[tuple[str, str], int] = {
    ("smtp", "smtp"): 25,
    ("smtp", "smtps"): 465,
    ("pop3", "pop3"): 110,
    ("pop3", "pop3s"): 995,
    ("imap", "imap"): 143,
    ("imap", "imaps"): 993,
    ("www", "http"): 80,
    ("www", "https"): 443,
    ("ssh", "ssh"): 22,
    ("telnet", "telnet"): 23,
    ("ftp", "ftp"): 21,
    ("ftp", "ftps"): 990,
}
#: ``setns(2)``'s namespace type for a network namespace.
CLONE_NEWNET = 0x40000000
#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = Path("/run/netns")
#: What ``lab`` prints once every host's services listen.
READY = "lab services ready in every host"
#: Seconds the lab services of all hosts have to start.
LAB_START_TIMEOUT = 30.0


@dataclass
class BookPortsLab(LabContext):
    """A lab context that binds the book's well-known ports (25, 110, 443 ...) in a host."""

    def port(self, service: str, endpoint: str) -> int:
        """The book's port for the server room's endpoints, else the lab's default."""
        return BOOK_PORTS.get((service, endpoint)) or super().port(service, endpoint)


def playground_zone(serial: int = 2014_03_25) -> Zone:
    """``example.com`` as the playground's backbone serves it."""
    zone = Zone(ORIGIN)
    soa = (NAME_SERVER, "hostmaster.example.com", serial, 3600, 600, 86400, DEFAULT_TTL)
    zone.add(Record(ORIGIN, "SOA", soa))
    zone.add(Record(ORIGIN, "NS", NAME_SERVER))
    zone.add(Record(ORIGIN, "MX", (10, "mail.example.com")))
    zone.add(Record("www.example.com", "MX", (10, "smtp.example.com")))
    zone.add(Record("smtp.example.com", "CNAME", "mail.example.com"))
    for h in HOSTS:
        name = h.fqdn if h.fqdn.endswith(ORIGIN) else f"{h.fqdn}.{ORIGIN}"
        zone.add(Record(name.lower(), "A", h.address))
    return zone


async def _serve_dns(host: str, port: int) -> None:
    from wirelab.dns.server import open_dns_server

    server = await open_dns_server(playground_zone(), host, port, port)
    print(f"listening at {host}:{port} (playground DNS)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def enter_netns(path: Path) -> None:
    """Move the calling thread (only it) into the network namespace at ``path``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise WirelabError(f"cannot enter {path}: {os.strerror(code)}")
    finally:
        os.close(fd)


def parse_plan(words: Sequence[str]) -> dict[str, list[str]]:
    """``["mail=smtp,pop3", "www=www"]`` as ``{"mail": ["smtp", "pop3"], "www": ["www"]}``."""
    known = {h.name for h in HOSTS}
    plan: dict[str, list[str]] = {}
    for word in words:
        host, _, names = word.partition("=")
        if host not in known or not names:
            raise ConfigError(f"bad host plan {word[:60]!r} (HOST=SERVICE,...)")
        plan.setdefault(host, []).extend(n for n in names.split(",") if n)
    return plan


def _start_host(
    prefix: str, home: Path, host: str, names: Sequence[str]
) -> tuple[LabThread, list[str]]:
    """In this (helper) thread: enter ``host``'s namespace and start its lab services there."""
    from wirelab.lab.registry import services
    from wirelab.lab.supervisor import LabThread

    enter_netns(NETNS_DIR / f"{prefix}-{host}")
    chosen = [s for s in services() if s.name in names]
    missing = sorted(set(names) - {s.name for s in chosen})
    if missing:
        raise ConfigError(f"the lab has no service {missing[0]!r}")
    lab = LabThread(chosen, BookPortsLab(state_dir=home, bind_host="0.0.0.0"))
    state = lab.start()  # its loop thread is created here, so it inherits the namespace
    if state.unavailable:
        lab.stop()
        name, why = next(iter(state.unavailable.items()))
        raise WirelabError(f"{host}: {name} is unavailable: {why}")
    lines = [
        f"listening at {host} {ep.address}:{ep.port} ({ep.service} {ep.endpoint})"
        for ep in state.endpoints
    ]
    return lab, lines


def _prepare(home: Path, plan: dict[str, list[str]]) -> None:
    """Create what several hosts would otherwise race to create: the SSH keys, the mail store."""
    wanted = {n for names in plan.values() for n in names}
    lab = BookPortsLab(state_dir=home)
    if "ssh" in wanted:
        from wirelab.ssh.service import lab_ssh_settings

        lab_ssh_settings(lab)
    if wanted & {"smtp", "pop3", "imap"}:
        from wirelab.smtp.service import lab_mail_store

        lab_mail_store(lab)


def serve_lab(prefix: str, home: Path, plan: dict[str, list[str]]) -> None:
    """Start each host's lab services inside it, say "listening at" for each, serve until
    SIGTERM or Ctrl-C, then stop them all."""
    began = time.monotonic()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    _prepare(home, plan)
    results: dict[str, tuple[LabThread, list[str]] | BaseException] = {}

    def start(host: str, names: list[str]) -> None:
        try:
            results[host] = _start_host(prefix, home, host, names)
        except BaseException as exc:  # reported by the main thread
            results[host] = exc

    helpers = [
        threading.Thread(target=start, args=(h, n), name=f"enter-{h}", daemon=True)
        for h, n in plan.items()
    ]
    for helper in helpers:
        helper.start()
    for helper in helpers:
        helper.join(LAB_START_TIMEOUT + 15)
    labs = [r[0] for r in results.values() if isinstance(r, tuple)]
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        errors = [r for r in results.values() if isinstance(r, BaseException)]
        if errors or len(results) < len(plan):
            late = sorted(set(plan) - set(results))
            raise errors[0] if errors else WirelabError(f"not started: {', '.join(late)}")
        for host in plan:
            entry = results[host]
            assert isinstance(entry, tuple)
            for line in entry[1]:
                print(line, file=sys.stderr, flush=True)
        seconds = time.monotonic() - began
        print(f"{READY} ({len(plan)} hosts, {seconds:.1f} s)", file=sys.stderr, flush=True)
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for lab in labs:
            lab.stop()


async def _serve_udp(host: str, port: int) -> None:
    """Chapter 2's UDP server, logging each request (and its sender) as ``udp serve`` does."""
    from wirelab.net.server import close_listener
    from wirelab.udp.server import open_udp_server

    logging.getLogger("wirelab.udp.server").setLevel(logging.INFO)
    server = await open_udp_server(host, port)
    print(f"listening at {host}:{port} (UDP)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await close_listener(server)


async def _serve_zen(host: str, port: int) -> None:
    """Chapter 7's Zen server (the default architecture), as ``zen serve`` runs it."""
    from wirelab.zen._core import ZenConfig
    from wirelab.zen.archs import DEFAULT_ARCH, start_server

    logging.getLogger("wirelab.zen").setLevel(logging.INFO)
    server = await asyncio.to_thread(start_server, DEFAULT_ARCH, host, port, ZenConfig())
    print(f"listening at {host}:{port} ({DEFAULT_ARCH})", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(server.stop)


#: ``hostd NAME [HOST [PORT]]``: the single servers, without the CLI's start-up (every topic).
SINGLE = {"dns": (_serve_dns, "10.1.1.1", 53), "udp": (_serve_udp, "0.0.0.0", 1060)}
SINGLE["zen"] = (_serve_zen, "0.0.0.0", 1060)


def main(argv: Sequence[str] | None = None) -> int:
    """``dns|udp|zen [HOST [PORT]]`` or ``lab PREFIX HOME HOST=SERVICE,...``: serve until
    killed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 4 and args[0] == "lab":
        try:
            serve_lab(args[1], Path(args[2]), parse_plan(args[3:]))
        except WirelabError as exc:
            print(f"wirelab: error: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0
    if not args or args[0] not in SINGLE or len(args) > 3:
        print(
            "usage: python -m wirelab.playground.hostd dns|udp|zen [HOST [PORT]]\n"
            "       python -m wirelab.playground.hostd lab PREFIX HOME HOST=SERVICE,...",
            file=sys.stderr,
        )
        return 2
    serve, host, port = SINGLE[args[0]]
    host = args[1] if len(args) > 1 else host
    port = int(args[2]) if len(args) > 2 else port
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(host, port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
