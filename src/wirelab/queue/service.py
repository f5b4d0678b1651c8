"""The lab's queue service (chapter 8): the pythagoras REP service on 6701.

Of the pipeline's parts, only pythagoras is a server with a lasting role: the source, the
subscribers and the tally live for one run of ``wirelab queue pi`` and bind fresh (ephemeral,
or the book's 6700 and 6702 with ``--book-ports``) each time. So the lab runs pythagoras
alone, as endpoint ``queue.rep``, and ``wirelab queue pi --pythagoras lab`` sends the judge's
requests to it, as a pipeline spread over hosts would send them to a service elsewhere.
"""

from __future__ import annotations

import asyncio
import threading

from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started

__all__ = ["SERVICES", "QueueService"]


class QueueService(Service):
    """pythagoras, a ZeroMQ REP service, in a thread of the lab."""

    name = "queue"
    host = "queue.example.com"
    chapter = 8
    description = "ZeroMQ pythagoras REP service (chapter 8): JSON sums of squares"

    async def serve(self, lab: LabContext, started: Started) -> None:
        import zmq

        from wirelab.queue.pythagoras import serve_pythagoras
        from wirelab.queue.sockets import tcp_endpoint

        loop = asyncio.get_running_loop()
        bound: asyncio.Future[str] = loop.create_future()
        stop = threading.Event()
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()

        def report(endpoint: str) -> None:
            loop.call_soon_threadsafe(_settle, bound, endpoint, None)

        def run() -> None:
            try:
                endpoint = tcp_endpoint(lab.bind_host, lab.port("queue", "rep"))
                serve_pythagoras(context, endpoint, stop, ready=report)
            except BaseException as exc:  # a bind error, surfaced by serve()
                loop.call_soon_threadsafe(_settle, bound, "", exc)

        thread = threading.Thread(target=run, name="wirelab-lab-pythagoras", daemon=True)
        thread.start()
        try:
            endpoint = await bound
            port = int(endpoint.rsplit(":", 1)[1])
            started([BoundEndpoint(self.name, "rep", self.host, lab.bind_host, port, "tcp")])
            await asyncio.Event().wait()
        finally:
            stop.set()
            thread.join(5.0)
            if not thread.is_alive():
                context.term()


def _settle(future: asyncio.Future[str], value: str, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


SERVICES = (QueueService(),)
