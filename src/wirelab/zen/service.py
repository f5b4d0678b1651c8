"""The lab's Zen service (chapter 7): the default architecture and the two inetd styles.

Endpoints: ``zen`` (the default architecture, port 1070: the book's 1060 belongs to chapter 3
in the lab), ``inetd-nowait`` (1071: a process per connection) and ``inetd-wait`` (1072: a
process that takes over the listener). The lab's ``wait`` child exits after 1.5 s with nobody
connected rather than the book's 8 s, so a test or the tour does not leave it running.
"""

from __future__ import annotations

import asyncio

from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started

__all__ = ["LAB_WAIT_IDLE", "SERVICES", "ZenService"]

#: Seconds the lab's inetd ``wait`` child keeps the listener with nobody connected.
LAB_WAIT_IDLE = 1.5


class ZenService(Service):
    """The Zen Q&A server, served by the fastest architecture, plus the inetd styles."""

    name = "zen"
    host = "example.com"
    chapter = 7
    description = "Zen Q&A (chapter 7): fastest architecture + inetd nowait/wait"

    async def serve(self, lab: LabContext, started: Started) -> None:
        from wirelab.net.addresses import listen_tcp
        from wirelab.zen._common import RunningServer
        from wirelab.zen._core import ZenConfig
        from wirelab.zen.archs import DEFAULT_ARCH, start_server
        from wirelab.zen.inetd import start_inetd_nowait, start_inetd_wait

        arch = str(lab.options.get("zen", DEFAULT_ARCH))
        config = ZenConfig()
        running: list[RunningServer] = []
        try:
            running.append(
                await asyncio.to_thread(
                    start_server, arch, lab.bind_host, lab.port("zen", "zen"), config
                )
            )
            # As under a real inetd, the children log to a file, not to the lab's terminal.
            log_path = lab.state_dir / "zen-inetd.log"
            nowait = listen_tcp(lab.bind_host, lab.port("zen", "inetd-nowait"))
            running.append(start_inetd_nowait(nowait, config, log_path=log_path))
            wait = listen_tcp(lab.bind_host, lab.port("zen", "inetd-wait"))
            running.append(
                start_inetd_wait(wait, config, wait_idle=LAB_WAIT_IDLE, log_path=log_path)
            )
            started(
                [
                    BoundEndpoint(
                        self.name, endpoint, self.host, srv.address[0], srv.address[1], "tcp"
                    )
                    for endpoint, srv in zip(
                        ("zen", "inetd-nowait", "inetd-wait"), running, strict=True
                    )
                ]
            )
            await asyncio.Event().wait()
        finally:
            for srv in reversed(running):
                await asyncio.to_thread(srv.stop)


SERVICES = (ZenService(),)
