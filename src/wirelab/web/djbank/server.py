"""``wirelab web django serve``: the lab's ``djbank`` service run on its own, until stopped.

The same service the lab runs (:class:`~wirelab.web.djbank.service.DjbankService`: gunicorn
behind the TLS front, a lab-CA certificate for www.example.com and the loopback addresses),
given a lab context of its own that binds the user's host and port. Its data and the CA are
the lab's (``STATE_DIR/djbank``, ``STATE_DIR/ca``), so the database is the one the lab
serves and clients trust the certificate through the same ``ca.pem``. No Django is imported
here: it runs in gunicorn's child.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wirelab.errors import ConfigError, ConnectError
from wirelab.lab.service import BoundEndpoint, LabContext
from wirelab.web.djbank.service import DjbankService

__all__ = ["StandaloneLab", "serve_until_stopped"]


@dataclass
class StandaloneLab(LabContext):
    """A lab context for one service on a port the user chose.

    Attributes:
        fixed_port: the port every endpoint binds (0: any free port).
        allowed_hosts: extra host names the app answers besides its defaults.
    """

    fixed_port: int = 0
    allowed_hosts: tuple[str, ...] = ()

    def port(self, service: str, endpoint: str) -> int:
        return self.fixed_port


class _StandaloneService(DjbankService):
    def environment(
        self, lab: LabContext, bound: dict[str, tuple[str, int, bool]]
    ) -> dict[str, str]:
        from wirelab.web.djbank.config import DATA_ENV, DEFAULT_HOSTS, prepare

        extra = lab.allowed_hosts if isinstance(lab, StandaloneLab) else ()
        where = Path(lab.state_dir) / "djbank"
        prepare(
            where,
            admin_password=lab.accounts[0].password,
            allowed_hosts=(*DEFAULT_HOSTS, *extra),
        )
        return {DATA_ENV: str(where)}


def serve_until_stopped(
    lab: StandaloneLab, ready: Callable[[Sequence[BoundEndpoint]], None]
) -> None:
    """Run the app for ``lab`` until Ctrl-C or SIGTERM; ``ready`` hears where it listens.

    Raises:
        ConnectError: the port could not be bound.
        ConfigError, Timeout: the app did not start (gunicorn's last words in the message).
    """

    async def main() -> None:
        up = asyncio.Event()
        where: list[BoundEndpoint] = []

        def started(endpoints: Sequence[BoundEndpoint]) -> None:
            where.extend(endpoints)
            up.set()

        stop = asyncio.Event()
        with contextlib.suppress(RuntimeError, NotImplementedError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        task = asyncio.create_task(_StandaloneService().serve(lab, started))
        waiter = asyncio.create_task(up.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # its start-up error, as it is
                raise ConfigError("the djbank service ended before it listened")
            ready(where)
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if task.done():
                task.result()
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except OSError as exc:
        raise ConnectError(f"cannot serve djbank: {exc.strerror or exc}") from exc
