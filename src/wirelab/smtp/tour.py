"""Chapter 13 in the tour: a message sent with STARTTLS and AUTH lands in the Maildir intact."""

from __future__ import annotations

from pathlib import Path

from wirelab.lab.tour import Chapter, TourContext

#: The name the lab mail host's certificate carries.
MAIL = "mail.example.com"

CHAPTER = Chapter(
    13,
    "SMTP",
    "EHLO, the envelope apart from the headers, STARTTLS before AUTH, and a durable 250.",
)


@CHAPTER.step("EHLO: the capabilities, SIZE in bytes, AUTH only after STARTTLS")
def _ehlo(ctx: TourContext) -> None:
    from wirelab.smtp.client import ehlo

    address, port = ctx.lab.endpoint("smtp", "smtp").sockaddr
    plain = ehlo(address, port, context=ctx.ssl_context(), tls_hostname=MAIL)
    tls = ehlo(address, port, context=ctx.ssl_context(), starttls=True, tls_hostname=MAIL)
    ctx.say(f"before TLS: {sorted(plain.features)}")
    ctx.say(f"after STARTTLS: {sorted(tls.features)}; SIZE {tls.size} bytes")
    ctx.check("starttls" in plain.features and "auth" not in plain.features, "AUTH in clear")
    ctx.check("auth" in tls.features, "no AUTH after STARTTLS")


@CHAPTER.step("send with STARTTLS and AUTH; the Maildir holds the same bytes")
def _send(ctx: TourContext) -> None:
    from wirelab.mail.messages import build_text
    from wirelab.mail.store import MailStore
    from wirelab.smtp.client import send
    from wirelab.smtp.service import mail_root

    account = ctx.lab.account
    address, port = ctx.lab.endpoint("smtp", "smtp").sockaddr
    data = build_text(
        "author@example.org", [f"{account.user}@example.com"], "Tour", "Sent by the tour.\n"
    )
    result = send(
        address,
        port,
        "author@example.org",
        [f"{account.user}@example.com"],
        data,
        context=ctx.ssl_context(),
        starttls="require",
        user=account.user,
        password=account.password,
        tls_hostname=MAIL,
    )
    ctx.say(f"accepted: {result.accepted}, TLS {result.tls}, logged in {result.authenticated}")
    store = MailStore(mail_root(Path(ctx.lab.directory)))
    stored = [m for m in store.messages(account.user) if m.read_bytes() == data]
    ctx.say(f"in the Maildir: {stored[0].folder}/{stored[0].key}" if stored else "not found")
    ctx.check(result.tls and result.authenticated, "not sent over TLS with AUTH")
    ctx.check(len(stored) == 1, "the message is not in the Maildir byte for byte")


@CHAPTER.step("an open relay is not: a recipient outside the lab's domains is refused")
def _relay(ctx: TourContext) -> None:
    from wirelab.errors import WirelabError
    from wirelab.smtp.client import send

    address, port = ctx.lab.endpoint("smtp", "smtp").sockaddr
    try:
        send(
            address,
            port,
            "author@example.org",
            ["someone@elsewhere.invalid"],
            b"Subject: relay?\r\n\r\nno\r\n",
            context=ctx.ssl_context(),
            tls_hostname=MAIL,
        )
    except WirelabError as exc:
        ctx.say(str(exc))
        ctx.check("Relaying denied" in str(exc), "refused for another reason")
    else:
        ctx.check(False, "the lab relayed mail to an outside domain")


CHAPTERS = (CHAPTER,)
