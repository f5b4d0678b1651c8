"""Chapter 15 in the tour: the same message over IMAP, read without being marked seen."""

from __future__ import annotations

from typing import Any

from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    15,
    "IMAP",
    "Folders, read-only selection, BODY.PEEK, and BODYSTRUCTURE part numbers.",
)


def _connect(ctx: TourContext, *, implicit: bool = True) -> Any:
    from wirelab.imap.client import connect

    address, port = ctx.lab.endpoint("imap", "imaps" if implicit else "imap").sockaddr
    account = ctx.lab.account
    return connect(
        address,
        port,
        account.user,
        account.password,
        context=ctx.ssl_context(),
        implicit_tls=implicit,
        timeout=10,
    )


@CHAPTER.step("LOGIN is refused before STARTTLS; the folders after it")
def _login(ctx: TourContext) -> None:
    import imaplib

    from wirelab.imap.client import folders

    address, port = ctx.lab.endpoint("imap", "imap").sockaddr
    plain = imaplib.IMAP4(address, port, timeout=10)
    try:
        caps = plain.capabilities
        try:
            plain.login(ctx.lab.account.user, ctx.lab.account.password)
            refused = False
        except imaplib.IMAP4.error:
            refused = True
    finally:
        plain.logout()
    ctx.say(f"before TLS: {' '.join(caps)}")
    ctx.check(refused and "LOGINDISABLED" in caps, "LOGIN accepted in clear")
    client = _connect(ctx, implicit=False)
    try:
        listing = folders(client)
    finally:
        client.logout()
    ctx.say("after STARTTLS: " + ", ".join(f"{f['name']} {f['flags']}" for f in listing))
    ctx.check(any(f["name"] == "INBOX" for f in listing), "no INBOX")


@CHAPTER.step("every message of the Maildir comes out of IMAP byte for byte, none marked seen")
def _same_bytes(ctx: TourContext) -> None:
    from pathlib import Path

    from wirelab.imap.client import fetch_message, summaries
    from wirelab.mail.store import MailStore
    from wirelab.smtp.service import mail_root

    store = MailStore(mail_root(Path(ctx.lab.directory)))
    stored = {m.read_bytes() for m in store.messages(ctx.lab.account.user)}
    client = _connect(ctx)
    try:
        found = summaries(client, "INBOX")
        fetched = {fetch_message(client, "INBOX", m.uid) for m in found}
        seen = [m.uid for m in summaries(client, "INBOX") if "\\Seen" in m.flags]
    finally:
        client.logout()
    ctx.say(f"{len(found)} messages by IMAP, {len(stored)} in the Maildir")
    ctx.check(fetched == stored, "IMAP bytes differ from the Maildir's")
    ctx.check(not seen, f"BODY.PEEK marked messages seen: {seen}")


@CHAPTER.step("BODYSTRUCTURE of the nested message as a tree; one part fetched alone")
def _structure(ctx: TourContext) -> None:
    from wirelab.imap.client import fetch_part, summaries
    from wirelab.mail.seed import NESTED_SUBJECT

    client = _connect(ctx)
    try:
        nested = [m for m in summaries(client, "INBOX") if m.subject == NESTED_SUBJECT]
        ctx.check(nested, "the seeded nested message is missing")
        tree = nested[0].parts
        for part in tree.walk():
            depth = part.number.count(".") if part.number else -1
            ctx.say(f"{'  ' * (depth + 1)}{part.number or 'TEXT'} {part.type}")
        gif = next(p for p in tree.walk() if p.type == "image/gif")
        found, data = fetch_part(client, "INBOX", nested[0].uid, gif.number)
    finally:
        client.logout()
    ctx.say(f"part {gif.number} alone: {found.type}, {len(data)} bytes")
    ctx.check(data.startswith(b"GIF8"), "the image part did not decode")


CHAPTERS = (CHAPTER,)
