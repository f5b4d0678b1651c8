"""``wirelab imap browse`` driven as a user would, with Textual's pilot, against our server."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Tree

from tests.imap.conftest import ImapHost
from wirelab.imap import client as imap
from wirelab.imap.browse import MailBrowser
from wirelab.mail.seed import NESTED_SUBJECT


def _line_of(tree: Tree[Any], text: str) -> int:
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None and text in str(node.label):
            return line
    raise AssertionError(f"{text!r} is not shown in the tree")


async def _drive(client: Any) -> list[str]:
    shown: list[str] = []
    app = MailBrowser(client, "mail.example.com")
    async with app.run_test(size=(160, 60)) as pilot:
        tree = app.query_one(Tree)
        await pilot.pause()
        tree.cursor_line = _line_of(tree, "INBOX")
        await pilot.press("enter")  # open the folder: its messages
        await pilot.pause()
        tree.cursor_line = _line_of(tree, NESTED_SUBJECT[:40])
        await pilot.press("space")  # open the nested message: its parts
        await pilot.pause()
        for text in ("1.2.2  image/gif", "3.1  text/plain", "3  message/rfc822"):
            tree.cursor_line = _line_of(tree, text)
            await pilot.press("enter")
            await pilot.pause()
            shown.append(app.shown)
        await pilot.press("q")
    return shown


def test_browse_opens_the_nested_message_and_any_part(imap_host: ImapHost) -> None:
    client = imap.connect(
        "127.0.0.1",
        imap_host.tls_port,
        "brandon",
        "abc123",
        context=imap_host.context(),
        timeout=10,
    )
    try:
        shown = asyncio.run(_drive(client))
        flags = [m.flags for m in imap.summaries(client, "INBOX")]
    finally:
        client.logout()
    gif, text, forwarded = shown
    assert gif.startswith("part 1.2.2: image/gif") and "47 49 46 38" in gif  # GIF8
    assert text.startswith("part 3.1: text/plain") and "error" not in text
    assert forwarded.startswith("part 3: message/rfc822")
    assert all("\\Seen" not in f for f in flags)
