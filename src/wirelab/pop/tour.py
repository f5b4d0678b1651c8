"""Chapter 14 in the tour: SMTP in, POP3 out byte for byte, and DELE committed only at QUIT."""

from __future__ import annotations

from pathlib import Path

from wirelab.lab.tour import Chapter, TourContext

#: The name the lab mail host's certificate carries.
MAIL = "mail.example.com"

CHAPTER = Chapter(
    14,
    "POP3",
    "Download-and-delete: TLS before passwords, TOP and RETR, deletions only at QUIT.",
)


def _send_one(ctx: TourContext, subject: str) -> bytes:
    from wirelab.mail.messages import build_text
    from wirelab.smtp.client import send

    user = ctx.lab.account.user
    address, port = ctx.lab.endpoint("smtp", "smtp").sockaddr
    data = build_text("author@example.org", [f"{user}@example.com"], subject, f"{subject}.\n")
    send(
        address,
        port,
        "author@example.org",
        [f"{user}@example.com"],
        data,
        context=ctx.ssl_context(),
        tls_hostname=MAIL,
    )
    return data


def _client(ctx: TourContext, *, implicit: bool = True) -> object:
    from wirelab.pop.client import PopClient

    address, port = ctx.lab.endpoint("pop3", "pop3s" if implicit else "pop3").sockaddr
    return PopClient(address, port, context=ctx.ssl_context(), implicit_tls=implicit, timeout=10)


@CHAPTER.step("a message sent over SMTP is listed over POP3 and RETR gives the same bytes")
def _retr(ctx: TourContext) -> None:
    from wirelab.pop.client import PopClient

    data = _send_one(ctx, "Tour chapter 14")
    account = ctx.lab.account
    client = _client(ctx)
    assert isinstance(client, PopClient)
    with client:
        client.login(account.user, account.password, apop=True)
        count, size = client.stat()
        ctx.say(f"APOP over POP3S: {count} messages, {size} bytes")
        found = [n for n, _ in client.list() if client.top(n, 0) == _head(data)]
        ctx.check(found, "the message sent over SMTP is not in the POP3 listing")
        fetched = client.retr(found[-1])
    ctx.say(f"message {found[-1]}: {len(fetched)} bytes by RETR, {len(data)} sent")
    ctx.check(fetched == data, "RETR did not give the bytes SMTP delivered")


def _head(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


@CHAPTER.step("USER/PASS is refused until STLS; then the same login works")
def _stls(ctx: TourContext) -> None:
    import poplib

    from wirelab.pop.client import PopClient

    address, port = ctx.lab.endpoint("pop3", "pop3").sockaddr
    plain = poplib.POP3(address, port, timeout=10)
    try:
        caps = plain.capa()
        try:
            plain.user(ctx.lab.account.user)
            refused = ""
        except poplib.error_proto as exc:
            refused = exc.args[0].decode("utf-8", "replace")
    finally:
        plain.quit()
    ctx.say(f"capabilities before TLS: {sorted(caps)}")
    ctx.say(f"USER in clear: {refused}")
    ctx.check("STLS" in caps and "USER" not in caps and refused.startswith("-ERR"), "USER in clear")
    client = _client(ctx, implicit=False)
    assert isinstance(client, PopClient)
    with client:
        client.login(ctx.lab.account.user, ctx.lab.account.password)
        ctx.say(f"after STLS: USER/PASS accepted, {client.stat()[0]} messages")
        ctx.check(client.tls, "no TLS after STLS")


@CHAPTER.step("DELE is applied only at QUIT: a dropped session deletes nothing")
def _dele(ctx: TourContext) -> None:
    from wirelab.mail.store import MailStore
    from wirelab.pop.client import PopClient
    from wirelab.smtp.service import mail_root

    account = ctx.lab.account
    store = MailStore(mail_root(Path(ctx.lab.directory)))
    data = _send_one(ctx, "Tour chapter 14: delete me")
    before = len(store.messages(account.user))

    def mark() -> PopClient:
        client = _client(ctx)
        assert isinstance(client, PopClient)
        client.login(account.user, account.password, apop=True)
        number = next(n for n, _ in client.list() if client.top(n, 0) == _head(data))
        client.dele(number)
        return client

    mark().close()  # no QUIT
    kept = len(store.messages(account.user))
    ctx.say(f"DELE then a dropped connection: {kept} of {before} messages remain")
    ctx.check(kept == before, "a session without QUIT deleted mail")
    answer = mark().quit()
    after = len(store.messages(account.user))
    ctx.say(f"DELE then QUIT ({answer}): {after} remain")
    ctx.check(after == before - 1, "QUIT did not apply the deletion")


CHAPTERS = (CHAPTER,)
