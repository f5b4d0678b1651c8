"""A lab service that is WSGI apps under gunicorn, behind the buffering h11 front.

The shape of chapter 10's second deployment architecture, made reusable: each app (named by an
import spec, as gunicorn names it) runs in one gunicorn child process on a private loopback
socket; each lab endpoint is a :func:`~wirelab.http.front.open_front` on the lab's bind host,
plain or TLS (a lab-CA certificate for the service's ``host`` and the loopback addresses). The
front reads every request whole, within its limits, before gunicorn sees it, so a client that
trickles or stalls costs a coroutine, not a gunicorn thread.

A child that dies is started again on the same socket (at most ``max_restarts`` times in
``restart_window`` seconds; then its endpoints answer 502 until the lab restarts). Everything
is stopped by PID and closed in ``finally:``: no socket, thread or child outlives the service.

How to use it (the www host of chapters 9-10 is one; chapter 11's services are others)::

    from wirelab.web.serving import WebEndpoint, WSGIService

    class TinySiteService(WSGIService):
        name = "tinysite"                    # lab_tinysite fixture, ports ("tinysite", ...)
        host = "www.example.com"             # certificate name of TLS endpoints
        chapter = 11
        description = "the book's test site for the crawlers (chapter 11)"
        app = "wirelab.web.tinysite.app:build()"     # gunicorn's APP spec (factory call ok)

        def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
            return (WebEndpoint("http"),)    # port: config.DEFAULT_PORTS[("tinysite", "http")]

The lab finds chapter 11's services through :mod:`wirelab.web.service` only: add an instance
to its ``SERVICES`` (one import line). More:

* ``WebEndpoint("https", tls=True)`` serves HTTPS with the lab CA; several endpoints may share
  one app (www: ``http`` and ``https``) or name their own (``WebEndpoint("x", app="pkg:app")``):
  one gunicorn child per distinct app.
* :meth:`WSGIService.environment` adds variables to the children's environment, for example a
  database path under ``lab.state_dir``. It gets the bound endpoints (``{name: (host, port,
  tls)}``), so an app can be told where the service's other endpoints listen.
* :func:`serve_standalone` runs a service on its own until Ctrl-C (a ``serve`` command):
  ``serve_standalone(MyService(), StandaloneContext(state_dir(), bind_host=host,
  fixed_port=port), ready)``.
* :meth:`WSGIService.bind_host` may pin an endpoint to loopback (a deliberately insecure app).
* ``threads`` (per child, ``gthread``), ``max_body`` (bytes the front accepts; default the
  front's), ``start_timeout`` and the restart policy (``poll_interval``, ``max_restarts``,
  ``restart_window``) are class attributes to override.
* The app sees ``X-Forwarded-Proto`` (``https`` behind a TLS endpoint) and ``X-Forwarded-For``
  from the front only; use ``werkzeug.middleware.proxy_fix.ProxyFix(app, x_proto=1,
  x_for=1)`` if it needs ``request.scheme`` to be right (Secure cookies, redirects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from wirelab.http.server import GunicornProcess
from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started

if TYPE_CHECKING:
    from wirelab.net.server import ConnectionServer

__all__ = ["BoundWeb", "StandaloneContext", "WSGIService", "WebEndpoint", "serve_standalone"]

log = logging.getLogger(__name__)

#: ``{endpoint name: (host, port, tls)}`` of a service's bound fronts.
BoundWeb = dict[str, tuple[str, int, bool]]


@dataclass(frozen=True)
class WebEndpoint:
    """One lab endpoint of a :class:`WSGIService`.

    Attributes:
        name: the endpoint's name; its port is ``lab.port(service, name)``.
        tls: serve HTTPS with a lab-CA certificate for the service's ``host``.
        app: the WSGI app behind it (gunicorn's spec); ``None`` means the service's ``app``.
    """

    name: str
    tls: bool = False
    app: str | None = None


class WSGIService(Service):
    """WSGI apps under gunicorn behind the buffering front, one front per endpoint.

    Subclasses set ``name``, ``host``, ``chapter``, ``description``, ``app`` and implement
    :meth:`web_endpoints`; see the module docstring.
    """

    #: The default app (gunicorn's spec, ``"module:callable"`` or ``"module:factory()"``).
    app: ClassVar[str] = ""
    #: Threads of the one ``gthread`` worker of each child.
    threads: ClassVar[int] = 8
    #: The most a request body may be (bytes), or ``None`` for the front's default.
    max_body: ClassVar[int | None] = None
    #: Every ``poll_interval`` seconds the children are checked; a dead one is restarted.
    poll_interval: ClassVar[float] = 0.5
    max_restarts: ClassVar[int] = 3
    restart_window: ClassVar[float] = 60.0
    #: Seconds a child may take to answer its first request.
    start_timeout: ClassVar[float] = 30.0

    def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
        """The endpoints, in order (default: one plain ``http`` endpoint)."""
        return (WebEndpoint("http"),)

    def bind_host(self, lab: LabContext, endpoint: WebEndpoint) -> str:
        """The address ``endpoint`` binds (default: the lab's bind host)."""
        return lab.bind_host

    def environment(self, lab: LabContext, bound: BoundWeb) -> dict[str, str]:
        """Extra environment variables for the gunicorn children (default: none)."""
        return {}

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.errors import ConfigError
        from wirelab.http.front import FrontLimits, open_front
        from wirelab.http.server import listen
        from wirelab.net.server import close_listener

        endpoints = tuple(self.web_endpoints(lab))
        specs: dict[str, str] = {}  # app spec -> the first endpoint's name (for its log)
        for endpoint in endpoints:
            spec = endpoint.app or self.app
            if not spec:
                raise ConfigError(f"{self.name}: endpoint {endpoint.name!r} names no app")
            specs.setdefault(spec, endpoint.name)
        limits = FrontLimits() if self.max_body is None else FrontLimits(max_body=self.max_body)
        children: dict[str, _Child] = {}
        fronts: list[ConnectionServer] = []
        try:
            for spec, first in specs.items():  # private sockets: only the fronts talk to them
                logname = self.name if len(specs) == 1 else f"{self.name}-{first}"
                children[spec] = _Child(
                    spec,
                    listen("127.0.0.1", 0),
                    workers=1,
                    worker_class="gthread",
                    threads=self.threads,
                    forwarded_allow_ips="127.0.0.1",  # the front's X-Forwarded-* only
                    logfile=lab.state_dir / "logs" / f"{logname}-gunicorn.log",
                )
            bound: BoundWeb = {}
            for endpoint in endpoints:
                child = children[endpoint.app or self.app]
                front = await open_front(
                    self.bind_host(lab, endpoint),
                    lab.port(self.name, endpoint.name),
                    child.address,
                    ssl_context=lab.server_ssl_context([self.host]) if endpoint.tls else None,
                    limits=limits,
                    name=f"{self.name} {endpoint.name} front" + (" (TLS)" if endpoint.tls else ""),
                )
                fronts.append(front)
                host, port = front.socket.getsockname()[:2]
                bound[endpoint.name] = (host, port, endpoint.tls)
            extra = self.environment(lab, bound)
            for child in children.values():
                child.extra_env = extra
                child.spawn()  # from the loop's thread: the child dies with it
            for child in children.values():
                await self._ready(child)
            started(
                [
                    lab.endpoint(self, endpoint.name, front.socket, tls=endpoint.tls)
                    for endpoint, front in zip(endpoints, fronts, strict=True)
                ]
            )
            await asyncio.gather(*(self._watch(child) for child in children.values()))
            await asyncio.Event().wait()
        finally:
            for front in reversed(fronts):
                await close_listener(front)
            for child in children.values():
                child.terminate()
            for child in children.values():
                await asyncio.to_thread(child.close)

    async def _ready(self, child: GunicornProcess) -> None:
        from wirelab.errors import Timeout

        deadline = time.monotonic() + self.start_timeout
        while not await asyncio.to_thread(child.poll_ready):
            if time.monotonic() > deadline:
                raise Timeout(f"{child} did not answer within {self.start_timeout:g} s")
            await asyncio.sleep(0.1)

    async def _watch(self, child: GunicornProcess) -> None:
        """Restart ``child`` when it dies; give up (and log it) after too many restarts."""
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
                    "%s %s; giving up after %d restarts: its endpoints answer 502 until the "
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


class _Child(GunicornProcess):
    """A gunicorn child whose environment carries the service's extra variables."""

    extra_env: dict[str, str] | None = None

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(self.extra_env or {})
        return env


@dataclass
class StandaloneContext(LabContext):
    """A lab context for one service run on its own, every endpoint on ``fixed_port``
    (0: a free port)."""

    fixed_port: int = 0

    def port(self, service: str, endpoint: str) -> int:
        return self.fixed_port


def serve_standalone(
    service: Service, lab: LabContext, ready: Callable[[Sequence[BoundEndpoint]], None]
) -> None:
    """Run ``service`` until Ctrl-C or SIGTERM; ``ready`` hears where it listens.

    Raises:
        ConnectError: an endpoint could not be bound.
        ConfigError, Timeout: the app did not start (gunicorn's last words in the message).
    """
    from wirelab.errors import ConfigError, ConnectError

    async def main() -> None:
        up = asyncio.Event()
        where: list[BoundEndpoint] = []

        def started(endpoints: Sequence[BoundEndpoint]) -> None:
            where.extend(endpoints)
            up.set()

        stop = asyncio.Event()
        with contextlib.suppress(RuntimeError, NotImplementedError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        task = asyncio.create_task(service.serve(lab, started))
        waiter = asyncio.create_task(up.wait())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # its start-up error, as it is
                raise ConfigError(f"the {service.name} service ended before it listened")
            ready(where)
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
        except OSError as exc:
            raise ConnectError(f"cannot start {service.name}: {exc.strerror or exc}") from exc
        finally:
            waiter.cancel()
            stopper.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
