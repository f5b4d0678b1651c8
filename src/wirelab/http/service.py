"""The lab's web host ``www.example.com`` (chapters 9 and 10): httpbin under gunicorn.

As in the book's playground, where the www host ran httpbin under gunicorn on port 80 and, with
the www certificate, on 443. Here one gunicorn (a child process of the lab: one ``gthread``
worker of 32 threads) serves httpbin on a private loopback socket, and the lab's two endpoints
are the buffering front of chapter 10's second deployment architecture
(:mod:`wirelab.http.front`): ``http`` (10080) and ``https`` (10444, a lab-CA certificate for
``www.example.com`` and the loopback addresses). The front reads each request whole before
gunicorn sees it, so clients that trickle or stall cost a coroutine, not one of gunicorn's
threads; responses keep gunicorn's status line and headers (``Server: gunicorn``).

Not a ``DeclaredService``: gunicorn is a child process, started from the lab's event-loop
thread (it dies with it), watched every half second (one that dies is started again, at most
three times a minute, on the same socket) and stopped by PID.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from wirelab.lab.service import LabContext, Service, Started

if TYPE_CHECKING:
    from wirelab.http.server import GunicornProcess
    from wirelab.net.server import ConnectionServer

__all__ = ["SERVICES", "WWW_HOST", "WwwService"]

log = logging.getLogger(__name__)

#: The playground name of the web host.
WWW_HOST = "www.example.com"
#: How gunicorn loads httpbin (through our loader, which quiets its flasgger warning).
HTTPBIN_APP = "wirelab.http.apps:build('httpbin')"


class WwwService(Service):
    """httpbin under gunicorn, behind the buffering front on HTTP and HTTPS."""

    name = "www"
    host = WWW_HOST
    chapter = 9
    description = "httpbin under gunicorn, HTTP and HTTPS (chapters 9 and 10)"
    poll_interval = 0.5
    max_restarts = 3
    restart_window = 60.0

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.http.front import open_front
        from wirelab.http.server import GunicornProcess, listen
        from wirelab.net.server import close_listener

        backend = GunicornProcess(
            HTTPBIN_APP,
            listen("127.0.0.1", 0),  # private: only the front talks to it
            workers=1,
            worker_class="gthread",
            threads=32,  # httpbin's /delay/10 and /drip hold a thread for their length
            forwarded_allow_ips="127.0.0.1",  # the front's X-Forwarded-* (it drops clients')
            logfile=lab.state_dir / "logs" / "www-gunicorn.log",
        )
        fronts: list[ConnectionServer] = []
        try:
            backend.spawn()  # from the loop's thread: the child dies with it
            await self._ready(backend)
            fronts.append(
                await open_front(lab.bind_host, lab.port(self.name, "http"), backend.address)
            )
            fronts.append(
                await open_front(
                    lab.bind_host,
                    lab.port(self.name, "https"),
                    backend.address,
                    ssl_context=lab.server_ssl_context([WWW_HOST]),
                    name="www front (TLS)",
                )
            )
            started(
                [
                    lab.endpoint(self, "http", fronts[0].socket),
                    lab.endpoint(self, "https", fronts[1].socket, tls=True),
                ]
            )
            await self._watch(backend)
            await asyncio.Event().wait()
        finally:
            for front in reversed(fronts):
                await close_listener(front)
            backend.terminate()
            await asyncio.to_thread(backend.close)

    @staticmethod
    async def _ready(child: GunicornProcess, timeout: float = 30.0) -> None:
        from wirelab.errors import Timeout

        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(child.poll_ready):
            if time.monotonic() > deadline:
                raise Timeout(f"{child} did not answer within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def _watch(self, child: GunicornProcess) -> None:
        from wirelab.errors import ConfigError, Timeout
        from wirelab.http.server import describe_exit

        restarts: list[float] = []
        while True:
            await asyncio.sleep(self.poll_interval)
            code = child.poll()
            if code is None:
                continue
            now = time.monotonic()
            restarts[:] = [t for t in restarts if now - t < self.restart_window]
            if len(restarts) >= self.max_restarts:
                log.error(
                    "%s %s; giving up after %d restarts: the front answers 502 until the "
                    "lab is restarted",
                    child,
                    describe_exit(code),
                    len(restarts),
                )
                return
            log.warning("%s %s; starting it again", child, describe_exit(code))
            restarts.append(now)
            child.process = None
            try:
                child.spawn()
                await self._ready(child)
            except (ConfigError, Timeout, OSError) as exc:
                log.error("%s did not come back: %s", child, exc)


SERVICES = (WwwService(),)
