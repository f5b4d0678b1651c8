"""``wirelab mail build|show|tree|reset`` (chapter 12, and the lab mailbox).

``build`` writes a message (bytes, CRLF line ends) to stdout or ``-o FILE``; ``show`` and
``tree`` read one from a file or stdin; ``reset`` puts the lab mailbox back as it was seeded
(the book's ``cp /root/var.mail.brandon.backup /var/mail/brandon``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import JsonOption, console, print_json
from wirelab.config import LAB_ACCOUNTS, Account
from wirelab.errors import ConfigError

if TYPE_CHECKING:
    from wirelab.mail.store import MailStore

__all__ = ["app"]

app = typer.Typer(
    name="mail",
    help="Chapter 12: build e-mail messages, show them and their MIME tree; reset the lab mailbox.",
    no_args_is_help=True,
)

#: The most a reader takes from a file or stdin.
MAX_INPUT = 16 << 20

FileArgument = Annotated[
    Path | None,
    typer.Argument(help="The message file (default: stdin).", show_default=False, dir_okay=False),
]


MailboxOption = Annotated[
    int | None,
    typer.Option(
        "--mailbox",
        help="Read the Nth message (1 = oldest) of a lab mailbox instead of a file.",
        min=1,
        show_default=False,
    ),
]
UserOption = Annotated[
    str, typer.Option("-u", "--user", help="The lab account whose mailbox to use.")
]


def _lab_store() -> tuple[MailStore, tuple[Account, ...]]:
    from wirelab.cli.common import lab_state
    from wirelab.config import private_dir, state_dir
    from wirelab.mail.store import MailStore
    from wirelab.smtp.service import mail_root

    state = lab_state()
    base = Path(state.directory) if state is not None and state.directory else state_dir()
    accounts = state.accounts if state is not None else LAB_ACCOUNTS
    return MailStore(private_dir(mail_root(base))), accounts


def _message_bytes(path: Path | None, mailbox: int | None, user: str) -> bytes:
    if mailbox is None:
        return _read(path)
    if path is not None:
        raise typer.BadParameter("give a file or --mailbox, not both")
    from wirelab.mail.seed import seed_store

    store, accounts = _lab_store()
    seed_store(store, accounts)
    if not store.has_user(user):
        raise ConfigError(f"{user!r} is not a lab mail account")
    messages = store.messages(user)
    if mailbox > len(messages):
        raise ConfigError(f"{user}'s mailbox has {len(messages)} messages, not {mailbox}")
    return messages[mailbox - 1].read_bytes()


def _read(path: Path | None) -> bytes:
    try:
        if path is None:
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with path.open("rb") as handle:
                data = handle.read(MAX_INPUT + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT:
        raise ConfigError(f"the message is over {MAX_INPUT} bytes")
    return data


@app.command()
def build(
    attachments: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files to attach (only their base names go in the message).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    sender: Annotated[str, typer.Option("--from", help="The From address.")] = (
        "author@example.com"
    ),
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="A To address (repeatable).", show_default=False),
    ] = None,
    subject: Annotated[str, typer.Option("--subject", help="The subject.")] = "Test Message",
    message: Annotated[
        str, typer.Option("-m", "--message", help="The plain-text body.")
    ] = "Hello,\nThis is a basic message from Chapter 12.\n - Anonymous\n",
    html: Annotated[
        str | None,
        typer.Option(
            "--html", help="An HTML alternative (added after the plain text).", show_default=False
        ),
    ] = None,
    mime: Annotated[
        bool, typer.Option("--mime", help="Plain text and HTML alternatives (implied by --html).")
    ] = False,
    inline_image: Annotated[
        bool, typer.Option("--inline-image", help="Add an inline image the HTML shows (cid:).")
    ] = False,
    unicode: Annotated[
        bool,
        typer.Option("--unicode", help="The book's Old English poem: RFC 2047 name, QP body."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the message to this file.", dir_okay=False),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Build a message: plain text (F70), alternatives with an inline image and attachments
    (F71-F73), or non-ASCII headers with a quoted-printable body (F74)."""
    from wirelab.mail.messages import build_mime, build_text, build_unicode

    recipients = to or ["recipient@example.com"]
    body = message if message.endswith("\n") else message + "\n"
    if unicode:
        data = build_unicode(sender, "Anglo-Saxon Þeodcyning", recipients[0], subject)
    elif mime or html is not None or inline_image or attachments:
        data = build_mime(
            sender,
            recipients,
            subject,
            body,
            html,
            inline_image=inline_image,
            attachments=attachments or [],
        )
    else:
        data = build_text(sender, recipients, subject, body)
    if json_out:
        from wirelab.mail.messages import mime_tree, parse

        if out is not None:
            _write(out, data)
        print_json(
            {
                "bytes": len(data),
                "out": str(out) if out is not None else None,
                "parts": [part.to_json() for part in mime_tree(parse(data))],
                "message": None if out is not None else data.decode("ascii", "replace"),
            }
        )
        return
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    _write(out, data)


def _write(out: Path, data: bytes) -> None:
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from exc


@app.command()
def show(
    path: FileArgument = None,
    mailbox: MailboxOption = None,
    user: UserOption = LAB_ACCOUNTS[0].user,
    json_out: JsonOption = False,
) -> None:
    """Show a message: From, To, Date, Subject, the best body and the attachments (F75)."""
    from wirelab.mail.messages import parse, summarize

    summary = summarize(parse(_message_bytes(path, mailbox, user)))
    if json_out:
        print_json(summary.to_json())
        return
    for name, value in summary.headers.items():
        console.print(f"{name}: {value}", markup=False)
    console.print("")
    if summary.body is None:
        console.print("(this message has no text body)", markup=False)
    else:
        console.print(summary.body.rstrip("\n"), markup=False)
    for item in summary.attachments:
        console.print(
            f"attachment: {item['type']} {item['filename']!r} {item['kind']} len={item['length']}",
            markup=False,
        )
    for note in summary.notes:
        console.print(f"note: {note}", markup=False)


@app.command()
def tree(
    path: FileArgument = None,
    mailbox: MailboxOption = None,
    user: UserOption = LAB_ACCOUNTS[0].user,
    json_out: JsonOption = False,
) -> None:
    """Show the MIME tree: dotted part numbers, types, sizes, attachments (F76)."""
    from wirelab.mail.messages import mime_tree, parse

    parts = mime_tree(parse(_message_bytes(path, mailbox, user)))
    if json_out:
        print_json([part.to_json() for part in parts])
        return
    for part in parts:
        console.print(part.line(), markup=False)


@app.command()
def reset(
    user: UserOption = LAB_ACCOUNTS[0].user,
    json_out: JsonOption = False,
) -> None:
    """Put a lab mailbox back as it was seeded (the book's reset from a backup copy)."""
    from wirelab.mail.seed import reset_mailbox, seed_store

    store, accounts = _lab_store()
    if not any(account.user == user for account in accounts) and not store.has_user(user):
        raise ConfigError(f"{user!r} is not a lab mail account")
    seed_store(store, accounts)
    count = reset_mailbox(store, user)
    where = store.maildir(user)
    if json_out:
        print_json({"user": user, "messages": count, "maildir": str(where)})
        return
    console.print(f"{user}'s mailbox has {count} messages again ({where})", markup=False)
