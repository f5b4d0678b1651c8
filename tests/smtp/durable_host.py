"""A mail host in a child process for the kill -9 tests: ``durable_host.py STORE [--stall]``.

Opens the store (accounts seeded once; a dead host's spool is recovered by opening it),
serves plain SMTP on a free loopback port, prints ``PORT n`` and serves until killed. Nothing
here cleans up: the test kills it with SIGKILL.

``--stall``: the Maildir writer never delivers a journaled message (a test-only patch of the
store's hand-off from the journal writer to the Maildir writer), so every 250 this host gives
is for a message that is only in the spool journal: a kill -9 then lands, for certain, in
the window between the acknowledgement and the Maildir delivery.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import wirelab.mail.store as store_module
from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.store import MailStore
from wirelab.smtp.server import SMTPSettings, open_smtp_server


def _stall_maildir_deliveries() -> None:
    real = store_module._COMMITTER.submit_jobs

    def submit_jobs(jobs: list[store_module._Job]) -> None:
        real([job for job in jobs if job.ticket is None])  # journaled ones: never

    store_module._COMMITTER.submit_jobs = submit_jobs  # type: ignore[method-assign]


async def main(root: Path) -> None:
    store = MailStore(root)
    if not store.has_user(LAB_ACCOUNTS[0].user):
        store.add_account(LAB_ACCOUNTS[0].user, LAB_ACCOUNTS[0].password)
    server = await open_smtp_server("127.0.0.1", 0, SMTPSettings(store))
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if "--stall" in sys.argv[2:]:
        _stall_maildir_deliveries()
    asyncio.run(main(Path(sys.argv[1])))
