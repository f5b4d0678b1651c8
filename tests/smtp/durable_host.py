"""A mail host in a child process for the kill -9 test: ``durable_host.py STORE``.

Opens the store (accounts seeded once), serves plain SMTP on a free loopback port, prints
``PORT n`` and serves until killed. Nothing here cleans up: the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from wirelab.config import LAB_ACCOUNTS
from wirelab.mail.store import MailStore
from wirelab.smtp.server import SMTPSettings, open_smtp_server


async def main(root: Path) -> None:
    store = MailStore(root)
    if not store.has_user(LAB_ACCOUNTS[0].user):
        store.add_account(LAB_ACCOUNTS[0].user, LAB_ACCOUNTS[0].password)
    server = await open_smtp_server("127.0.0.1", 0, SMTPSettings(store))
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
