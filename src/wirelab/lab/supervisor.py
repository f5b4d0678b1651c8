"""The supervisor: start lab services together, wait until all are ready, stop them cleanly.

Services run as tasks of one :class:`asyncio.TaskGroup`. Start-up has a deadline; the first
service that fails before it is ready stops the whole start and its error is raised as it is
(not wrapped in an exception group), so ``wirelab lab up`` says "address already in use" and
not "unhandled errors in a TaskGroup". A service that raises
:class:`~wirelab.errors.ServiceUnavailable` is reported and the others carry on. After start,
a service that crashes is logged and the others keep serving.

:class:`LabThread` runs a lab on a private event loop in a background thread, for the tour and
the pytest fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from wirelab.errors import ConfigError, ServiceUnavailable, Timeout
from wirelab.lab.service import BoundEndpoint, LabContext, Service
from wirelab.lab.state import LabState

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "LabThread",
    "Supervisor",
    "run_foreground",
    "settle_imports",
]

log = logging.getLogger(__name__)

#: Seconds every service together has to bind and report ready.
DEFAULT_START_TIMEOUT = 30.0


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error in a (nested) exception group, cancellations skipped."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group


def settle_imports() -> None:
    """Under pytest, import every wirelab module now, in this one thread.

    pytest rewrites the asserts of a plugin's whole package (wirelab ships one), so each
    wirelab module is parsed with ``ast.parse`` when it is first imported; and CPython 3.11's
    conversion of a parse tree to ``ast`` objects keeps its recursion depth in state that
    threads share, so two threads parsing at once fail with "SystemError: AST constructor
    recursion depth mismatch". A lab imports lazily from its loop and its services' threads
    at once, so a lab started in a test failed now and then on a fresh checkout. Importing
    everything first, from one thread, leaves nothing to parse later. Outside pytest (no
    rewriting hook) this does nothing.
    """
    if not any(type(f).__name__ == "AssertionRewritingHook" for f in sys.meta_path):
        return
    import wirelab

    for info in pkgutil.walk_packages(wirelab.__path__, "wirelab."):
        if info.name in sys.modules or info.name.endswith("__main__"):
            continue
        with contextlib.suppress(Exception, SystemExit):  # an optional dependency not installed
            importlib.import_module(info.name)


class Supervisor:
    """Runs a set of services under one task group."""

    def __init__(
        self,
        services: Sequence[Service],
        lab: LabContext,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        if not services:
            raise ConfigError("no lab services to start")
        self.services = tuple(services)
        self.lab = lab
        self.start_timeout = start_timeout
        self.state: LabState | None = None
        self._bound: dict[str, list[BoundEndpoint]] = {}
        self._unavailable: dict[str, str] = {}
        self._on_change: Callable[[LabState], None] | None = None

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        on_ready: Callable[[LabState], None] | None = None,
    ) -> None:
        """Start every service, call ``on_ready(state)``, serve until ``stop`` is set.

        A service that reports its endpoints again while the lab runs (a node it gave up on,
        say) gets a new state, and ``on_ready`` is called again with it (the state file is
        rewritten).

        Raises:
            Exception: the first start-up error of any service, as it was raised.
            Timeout: some service did not report ready within ``start_timeout``.
        """
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        ready = {svc.name: loop.create_future() for svc in self.services}
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                for svc in self.services:
                    coro = self._run_one(svc, ready[svc.name], loop)
                    tasks.append(group.create_task(coro, name=f"wirelab-lab:{svc.name}"))
                await self._wait_ready(ready)
                self.state = self._make_state()
                log.info("lab ready: %d endpoints", len(self.state.endpoints))
                self._on_change = on_ready
                if on_ready is not None:
                    on_ready(self.state)
                await stop.wait()
                log.info("lab stopping")
                for task in tasks:
                    task.cancel()
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None

    async def _wait_ready(self, ready: dict[str, asyncio.Future[None]]) -> None:
        # asyncio.wait, not gather under a timeout: on timeout it leaves the futures pending,
        # so the message can name the services that never reported.
        _, pending = await asyncio.wait(ready.values(), timeout=self.start_timeout)
        if pending:
            slow = ", ".join(name for name, fut in ready.items() if fut in pending)
            raise Timeout(f"lab services not ready within {self.start_timeout:g} s: {slow}")

    def _make_state(self) -> LabState:
        endpoints = tuple(ep for svc in self.services for ep in self._bound.get(svc.name, ()))
        return LabState(
            endpoints=endpoints,
            ca=str(self.lab.ca.cert_path),
            accounts=self.lab.accounts,
            directory=str(self.lab.state_dir),
            unavailable=dict(self._unavailable),
        )

    async def _run_one(
        self, svc: Service, ready: asyncio.Future[None], loop: asyncio.AbstractEventLoop
    ) -> None:
        def mark(endpoints: Sequence[BoundEndpoint]) -> None:
            self._bound[svc.name] = list(endpoints)
            if not ready.done():
                ready.set_result(None)
            elif self.state is not None:  # a change while the lab runs: a new state
                self.state = self._make_state()
                log.info("lab service %s now has %d endpoints", svc.name, len(endpoints))
                if self._on_change is not None:
                    self._on_change(self.state)

        def started(endpoints: Sequence[BoundEndpoint]) -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                mark(endpoints)
            else:  # a blocking server reporting from its own thread
                loop.call_soon_threadsafe(mark, list(endpoints))

        try:
            await svc.serve(self.lab, started)
        except ServiceUnavailable as exc:
            log.warning("lab service %s is unavailable: %s", svc.name, exc)
            self._unavailable[svc.name] = str(exc)
            if not ready.done():
                ready.set_result(None)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            if not ready.done():
                raise
            log.exception("lab service %s failed; the others keep serving", svc.name)
            return
        if not ready.done():
            raise ConfigError(f"lab service {svc.name} returned without reporting ready")


def run_foreground(
    services: Sequence[Service],
    lab: LabContext,
    state_file: Path,
    *,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    on_ready: Callable[[LabState], None] | None = None,
) -> None:
    """Run a lab in this process until SIGINT or SIGTERM; keep the state file while it runs."""
    supervisor = Supervisor(services, lab, start_timeout=start_timeout)

    def ready(state: LabState) -> None:
        state.save(state_file)
        if on_ready is not None:
            on_ready(state)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await supervisor.run(stop=stop, on_ready=ready)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    finally:
        if supervisor.state is not None:
            try:
                if LabState.load(state_file, check_alive=False).pid == supervisor.state.pid:
                    state_file.unlink()
            except (ConfigError, OSError):
                pass


class LabThread:
    """A lab on its own event loop in a background thread (tour, pytest fixtures).

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with LabThread(services, LabContext(tmp, ephemeral=True)) as state:
            print(state.endpoint("udp").sockaddr)
    """

    def __init__(
        self,
        services: Sequence[Service],
        lab: LabContext,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        state_file: Path | None = None,
    ) -> None:
        self.supervisor = Supervisor(services, lab, start_timeout=start_timeout)
        self.state_file = state_file
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> LabState:
        """The running lab's state."""
        if self.supervisor.state is None:
            raise ConfigError("the lab is not running")
        return self.supervisor.state

    def start(self) -> LabState:
        """Start the lab and block until it is ready.

        Raises:
            Exception: whatever stopped a service from starting, as it was raised.
        """
        settle_imports()
        self._thread = threading.Thread(target=self._main, name="wirelab-lab", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.supervisor.start_timeout + 10):
            self.stop()
            raise Timeout("the lab did not start in time")
        if self._error is not None:
            self._thread.join(10)
            raise self._error
        return self.state

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every service and wait for the lab thread to end."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the lab thread did not stop within %g s", timeout)

    def __enter__(self) -> LabState:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.supervisor.run(stop=self._stop, on_ready=self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller of start()
            self._error = exc
        finally:
            self._ready.set()

    def _on_ready(self, state: LabState) -> None:
        if self.state_file is not None:
            state.save(self.state_file)
        self._ready.set()
