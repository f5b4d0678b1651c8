"""``wirelab imap browse``: a terminal mail browser on Textual (the book's simple_client.py).

One tree: the server, its folders, each folder's messages (UID, date, size, flags, From,
Subject, from one read-only FETCH of headers and BODYSTRUCTURE), each message's parts by
IMAP part number. Selecting a part downloads only that part (``BODY.PEEK[n]``: nothing is
marked ``\\Seen``) and shows it: text decoded with its charset, anything else as its type,
size and first bytes. The book's browser crashed on a message whose parts nested deeper
than it expected; the tree has no depth limit, and a part that cannot be fetched or decoded
is shown as an error line, never a crash.

The IMAP calls run in the UI's thread: the lab's server answers in milliseconds, and a
browser that waits for its answer is simpler to drive and to test (Textual's pilot).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static, Tree
from textual.widgets.tree import TreeNode

from wirelab.errors import WirelabError
from wirelab.imap.client import Part, fetch_part, folders, summaries

__all__ = ["MailBrowser"]

#: Bytes of a non-text part shown (as hex).
PREVIEW_BYTES = 64


def _part_label(part: Part) -> str:
    label = f"{part.number or 'TEXT'}  {part.type}"
    if part.size is not None:
        label += f"  {part.size} bytes"
    if part.filename:
        label += f"  {part.filename!r}"
    return label


class MailBrowser(App[None]):
    """Folders -> messages -> parts -> one part's content.

    Args:
        client: a logged-in :class:`imapclient.IMAPClient` (the caller logs it out).
        title: the server's name, the tree's root.
    """

    TITLE = "wirelab imap browse"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("q", "quit", "Quit")
    ]
    CSS = """
    Tree { width: 55%; }
    #viewer { width: 45%; border-left: solid $accent; padding: 0 1; }
    Horizontal { height: 1fr; }
    """

    def __init__(self, client: Any, title: str) -> None:
        super().__init__()
        self.client = client
        self.server_title = title
        #: What the viewer shows now (tests read it).
        self.shown = ""

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        yield Header()
        with Horizontal():
            yield Tree(self.server_title, id="tree")
            yield Static("Select a folder, a message, then a part.", id="viewer")
        yield Footer()

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.root.expand()
        try:
            listing = folders(self.client)
        except WirelabError as exc:
            self._show(f"error: {exc}")
            return
        for entry in listing:
            node = tree.root.add(entry["name"], data={"kind": "folder", "folder": entry["name"]})
            node.allow_expand = True
        tree.focus()

    def _show(self, text: str) -> None:
        self.shown = text
        self.query_one("#viewer", Static).update(text)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[dict[str, Any]]) -> None:
        node = event.node
        data = node.data or {}
        if data.get("kind") == "message":
            node.expand_all()  # opening a message shows its whole structure
        elif data.get("kind") == "folder" and not node.children:
            self._load_folder(node, data["folder"])

    def _load_folder(self, node: TreeNode[dict[str, Any]], folder: str) -> None:
        try:
            found = summaries(self.client, folder)
        except WirelabError as exc:
            self._show(f"error: {exc}")
            return
        if not found:
            node.add_leaf("(empty)")
        for message in found:
            flags = " ".join(message.flags) or "-"
            label = (
                f"{message.uid:>4} {message.date[:16]} {message.size:>7} {flags} "
                f"{message.sender[:24]}: {message.subject[:50]}"
            )
            child = node.add(label, data={"kind": "message", "uid": message.uid, "folder": folder})
            self._add_parts(child, message.parts, folder, message.uid)

    def _add_parts(self, node: TreeNode[dict[str, Any]], part: Part, folder: str, uid: int) -> None:
        data = {"kind": "part", "part": part, "folder": folder, "uid": uid}
        if part.parts:
            child = node.add(_part_label(part), data=data)
            for sub in part.parts:
                self._add_parts(child, sub, folder, uid)
            if part.type == "message/rfc822":
                child.add_leaf(f"{part.number}  (the whole forwarded message)", data=data)
        else:
            node.add_leaf(_part_label(part), data=data)

    def on_tree_node_selected(self, event: Tree.NodeSelected[dict[str, Any]]) -> None:
        data = event.node.data or {}
        part = data.get("part")
        if not isinstance(part, Part):
            return
        if part.type.startswith("multipart/"):
            self._show(f"{part.type}: {len(part.parts)} parts; pick one of them")
            return
        number = part.number or "1"
        try:
            found, payload = fetch_part(self.client, data["folder"], data["uid"], number)
        except WirelabError as exc:
            self._show(f"error: {exc}")
            return
        self._show(render_part(found, payload))


def render_part(part: Part, payload: bytes) -> str:
    """What the viewer shows for one downloaded part."""
    head = f"part {part.number}: {part.type}, {len(payload)} bytes"
    if part.filename:
        head += f", {part.filename!r}"
    if part.type.startswith("text/") or part.type == "message/rfc822":
        charset = part.params.get("charset", "utf-8")
        try:
            text = payload.decode(charset, "replace")
        except LookupError:
            text = payload.decode("latin-1")
        return f"{head}\n\n{text.replace(chr(13), '')}"
    shown = payload[:PREVIEW_BYTES].hex(" ")
    more = " ..." if len(payload) > PREVIEW_BYTES else ""
    return f"{head}\n\n{shown}{more}"
