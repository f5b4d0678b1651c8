"""The suite's leak check (tests/conftest.py) sees ``asyncio.to_thread`` work left running."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.conftest import _busy_workers


def test_to_thread_work_left_running_is_seen_and_idle_workers_are_not() -> None:
    release = threading.Event()
    started = threading.Event()
    loop = asyncio.new_event_loop()

    def blocking_job() -> None:
        started.set()
        release.wait(10)

    async def main() -> None:
        await asyncio.to_thread(blocking_job)
        await asyncio.to_thread(time.sleep, 0)  # the worker goes idle afterwards

    runner = threading.Thread(target=loop.run_until_complete, args=(main(),), name="leaky-loop")
    runner.start()
    try:
        assert started.wait(5)
        busy = _busy_workers()
        assert any(work.endswith(".blocking_job") for work in busy.values()), busy
        assert all(t.name.startswith("asyncio_") for t in busy)
    finally:
        release.set()
        runner.join(10)
    deadline = time.monotonic() + 5
    while _busy_workers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _busy_workers()  # an idle worker is not a leak
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
