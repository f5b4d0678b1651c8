"""The lab's web host ``www.example.com`` (chapters 9 and 10): httpbin under gunicorn.

As in the book's playground, where the www host ran httpbin under gunicorn on port 80 and, with
the www certificate, on 443: two gunicorn child processes, ``http`` (10080) and ``https``
(10444, a lab-CA certificate for ``www.example.com`` and the loopback addresses), each on a
socket the lab binds first. Not a ``DeclaredService``: the servers are child processes, which
the service starts from the lab's event-loop thread (they die with it), watches every half
second (one that dies is started again, at most three times a minute) and stops by PID.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from wirelab.lab.service import LabContext, Service, Started

if TYPE_CHECKING:
    from wirelab.http.server import GunicornProcess

__all__ = ["SERVICES", "WWW_HOST", "WwwService"]

log = logging.getLogger(__name__)

#: The playground name of the web host.
WWW_HOST = "www.example.com"
#: How gunicorn loads httpbin (through our loader, which quiets its flasgger warning).
HTTPBIN_APP = "wirelab.http.apps:build('httpbin')"


class WwwService(Service):
    """httpbin served by gunicorn on HTTP and HTTPS, as child processes of the lab."""

    name = "www"
    host = WWW_HOST
    chapter = 9
    description = "httpbin under gunicorn on HTTP and HTTPS (chapters 9 and 10)"
    poll_interval = 0.5
    max_restarts = 3
    restart_window = 60.0

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.http.server import GunicornProcess, listen

        cert, key = lab.ca.server_cert_for([WWW_HOST], lab.state_dir / "ca")
        client_ctx = lab.client_ssl_context()
        children: list[GunicornProcess] = []
        try:
            for endpoint, tls in (("http", False), ("https", True)):
                sock = listen(lab.bind_host, lab.port(self.name, endpoint))
                children.append(
                    GunicornProcess(
                        HTTPBIN_APP,
                        sock,
                        workers=1,
                        worker_class="gthread",
                        threads=8,
                        certfile=cert if tls else None,
                        keyfile=key if tls else None,
                        logfile=lab.state_dir / "logs" / f"www-{endpoint}.log",
                    )
                )
            for child in children:
                child.spawn()  # from the loop's thread: the children die with it
            for child in children:
                await self._ready(child, client_ctx)
            started(
                [
                    lab.endpoint(self, "http", children[0].sock),
                    lab.endpoint(self, "https", children[1].sock, tls=True),
                ]
            )
            async with asyncio.TaskGroup() as group:
                for name, child in zip(("http", "https"), children, strict=True):
                    group.create_task(
                        self._watch(child, client_ctx), name=f"wirelab-lab:www.{name}"
                    )
            await asyncio.Event().wait()
        finally:
            for child in children:
                child.terminate()  # all at once, then reap each
            for child in children:
                child.close()

    @staticmethod
    async def _ready(child: GunicornProcess, client_ctx: object, timeout: float = 30.0) -> None:
        import ssl

        from wirelab.errors import Timeout

        context = client_ctx if isinstance(client_ctx, ssl.SSLContext) else None
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(child.poll_ready, context, WWW_HOST):
            if time.monotonic() > deadline:
                raise Timeout(f"{child} did not answer within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def _watch(self, child: GunicornProcess, client_ctx: object) -> None:
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
                    "%s %s; giving up after %d restarts", child, describe_exit(code), len(restarts)
                )
                return
            log.warning("%s %s; starting it again", child, describe_exit(code))
            restarts.append(now)
            child.process = None
            try:
                child.spawn()
                await self._ready(child, client_ctx)
            except (ConfigError, Timeout, OSError) as exc:
                log.error("%s did not come back: %s", child, exc)


SERVICES = (WwwService(),)
