"""A private lab DNS server on a free loopback port, run in its own event-loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from wirelab.dns.server import DNSServer, ServerLimits, open_dns_server
from wirelab.dns.zone import Zone, lab_zone


@dataclass
class RunningDNS:
    """Where a test DNS server listens."""

    host: str
    port: int
    server: DNSServer


class DNSThread:
    """Run :func:`open_dns_server` on a private loop until :meth:`stop`."""

    def __init__(self, zone: Zone, limits: ServerLimits | None = None) -> None:
        self.zone = zone
        self.limits = limits
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.running: RunningDNS | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="wirelab-lab-dns-test", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            try:
                server = await open_dns_server(self.zone, "127.0.0.1", 0, limits=self.limits)
            except BaseException as exc:
                self.error = exc
                self.ready.set()
                raise
            self.running = RunningDNS("127.0.0.1", server.udp_socket.getsockname()[1], server)

        try:
            self.loop.run_until_complete(start())
            self.ready.set()
            self.loop.run_forever()
        finally:
            if self.running is not None:
                self.loop.run_until_complete(self.running.server.close())
            self.loop.close()

    def start(self) -> RunningDNS:
        self.thread.start()
        assert self.ready.wait(10), "DNS server did not start"
        if self.error is not None:
            raise self.error
        assert self.running is not None
        return self.running

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def dns_server() -> Iterator[RunningDNS]:
    """The lab zone (plus one extra service host) served on 127.0.0.1, UDP and TCP, same port."""
    runner = DNSThread(lab_zone(["nominatim.example.com", "outside.example.org"]))
    try:
        yield runner.start()
    finally:
        runner.stop()


@pytest.fixture
def start_dns() -> Iterator[Callable[..., RunningDNS]]:
    """A factory: ``start_dns(zone, limits)`` runs a private server until the test ends."""
    runners: list[DNSThread] = []

    def start(zone: Zone, limits: ServerLimits | None = None) -> RunningDNS:
        runner = DNSThread(zone, limits)
        runners.append(runner)
        return runner.start()

    try:
        yield start
    finally:
        for runner in runners:
            runner.stop()
