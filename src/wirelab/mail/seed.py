"""The seeded mailbox: what ``brandon`` finds in the lab, like the book's ``sample-mbox``.

Four messages, the same bytes on every run (fixed dates and Message-IDs):

1. "Welcome to example.com!" (admin, 25 Mar 2014), plain text;
2. "Introduction to e-mail" (admin, 21 Apr 2014), plain text;
3. the chapter 12 MIME message: multipart/mixed holding multipart/alternative (plain, HTML)
   and the ``attachment.txt`` attachment;
4. the nested multipart message that crashed the book's IMAP browser (chapter 15's
   ``simple_client.py``): mixed > related > alternative, an inline image, an attachment and a
   forwarded message/rfc822 that is itself multipart.

:func:`reset_mailbox` empties an account's Maildir and delivers these again (``wirelab mail
reset``, the book's ``cp /root/var.mail.brandon.backup /var/mail/brandon``).
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

from wirelab.config import Account
from wirelab.mail.messages import BLUE_DOT_GIF
from wirelab.mail.store import MailStore

__all__ = ["NESTED_SUBJECT", "reset_mailbox", "seed_messages", "seed_store"]

_POLICY = email.policy.SMTP
#: The subject of the nested message (tests and chapter 15 look for it).
NESTED_SUBJECT = "Nested parts: the message that crashed the book's browser"


def _base(subject: str, date: str, msgid: str, sender: str = "admin@example.com") -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = "brandon@example.com"
    message["Subject"] = subject
    message["Date"] = date
    message["Message-ID"] = f"<{msgid}@example.com>"
    return message


def _welcome() -> bytes:
    message = _base("Welcome to example.com!", "Tue, 25 Mar 2014 17:14:01 -0400", "seed-1")
    message.set_content(
        "Welcome to example.com! This mailbox belongs to the Foundations of Python\n"
        "Network Programming lab. Mail sent here stays on this machine.\n"
    )
    return message.as_bytes()


def _introduction() -> bytes:
    message = _base("Introduction to e-mail", "Mon, 21 Apr 2014 09:30:00 -0400", "seed-2")
    message.set_content(
        "An e-mail message is a block of headers, a blank line, and a body.\n"
        "Chapter 12 builds them; chapters 13 to 15 send and fetch them.\n"
    )
    return message.as_bytes()


def _mime() -> bytes:
    message = _base("Test Message, Chapter 12", "Sat, 03 May 2014 12:00:00 -0400", "seed-3")
    message.set_content("Hello,\nThis is a MIME message from Chapter 12.\n- Anonymous\n")
    message.add_alternative(
        "<p>Hello,</p>\n<p>This is a <b>test message</b> from Chapter 12.</p>\n"
        "<p>- <i>Anonymous</i></p>\n",
        subtype="html",
    )
    message.add_attachment("This is a test\n", filename="attachment.txt")
    return message.as_bytes()


def _nested() -> bytes:
    message = _base(NESTED_SUBJECT, "Sun, 04 May 2014 08:15:00 -0400", "seed-4")
    message.set_content("The plain version of a report with a picture.\n")
    message.add_alternative(
        '<p>The HTML version, with a picture: <img src="cid:dot.seed-4@example.com"></p>\n',
        subtype="html",
    )
    payload = message.get_payload()
    assert isinstance(payload, list)
    html = payload[-1]
    assert isinstance(html, EmailMessage)
    html.add_related(
        BLUE_DOT_GIF,
        "image",
        "gif",
        cid="<dot.seed-4@example.com>",
        filename="blue-dot.gif",
        disposition="inline",
    )
    inner = _base("Forwarded: the original", "Sat, 03 May 2014 18:00:00 -0400", "seed-4-inner")
    inner.set_content("The forwarded message's own text.\n")
    inner.add_attachment(
        b"\x1f\x8b\x08\x00" + bytes(16), "application", "gzip", filename="attachment.gz"
    )
    message.add_attachment("A note attached to the report.\n", filename="notes.txt")
    message.add_attachment(inner)
    return message.as_bytes()


def _fixed_boundaries(data: bytes, name: str) -> bytes:
    """Replace the random MIME boundaries with fixed ones, so the seed is the same bytes."""
    message = email.message_from_bytes(data, policy=_POLICY)
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{name}_{number}")
    return message.as_bytes()


def seed_messages() -> list[bytes]:
    """The seeded messages, oldest first (the same bytes on every call)."""
    return [
        _welcome(),
        _introduction(),
        _fixed_boundaries(_mime(), "seed-3"),
        _fixed_boundaries(_nested(), "seed-4"),
    ]


def reset_mailbox(store: MailStore, user: str) -> int:
    """Empty ``user``'s Maildir and deliver the seeded messages; return how many."""
    messages = seed_messages()
    with store.locked():
        store.clear(user)
        for data in messages:
            store.deliver(user, data)
    return len(messages)


def seed_store(store: MailStore, accounts: tuple[Account, ...], *, reset: bool = False) -> None:
    """Create the accounts; seed each empty mailbox (or every one with ``reset``).

    Under the store's lock: the SMTP, POP3 and IMAP services of one lab start together and
    each calls this; the accounts are written and the mailboxes seeded once.
    """
    with store.locked():
        for account in accounts:
            if not store.has_user(account.user) or reset:
                store.add_account(account.user, account.password)
            if reset or not store.messages(account.user):
                reset_mailbox(store, account.user)
