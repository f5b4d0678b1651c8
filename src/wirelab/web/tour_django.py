"""Chapter 11 tour steps (django); they join :data:`wirelab.web.chapter.CHAPTER11`.

The same payments app on Django, through :class:`~wirelab.web.djbank.client.DjbankClient`
(a requests session that trusts the lab CA): log in and see the book's payments, pay through
the ModelForm and see the message once, have a payment without the CSRF token or from
another site refused, and find the admin open to the lab superuser only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wirelab.lab.tour import TourContext
from wirelab.web.chapter import CHAPTER11

if TYPE_CHECKING:
    from wirelab.web.djbank.client import DjbankClient

__all__ = ["CHAPTER11"]


def _client(ctx: TourContext) -> DjbankClient:
    from wirelab.net.addresses import format_address
    from wirelab.web.djbank.client import DjbankClient

    ep = ctx.lab.endpoint("djbank", "https")
    return DjbankClient(
        f"https://{format_address((ep.address, ep.port))}/", ssl_context=ctx.ssl_context()
    )


@CHAPTER11.step("django: brandon logs in (Django's auth) and sees the book's payments")
def _login(ctx: TourContext) -> None:
    from wirelab.web.djbank.accounts import BOOK_USERS

    brandon = BOOK_USERS[0]
    with _client(ctx) as client:
        ctx.check(client.get("/").token is None, "the payments page showed without a login")
        ctx.check(not client.login(brandon.user, "wrong"), "a wrong password was let in")
        ctx.check(client.login(brandon.user, brandon.password), "brandon could not log in")
        ctx.say(f"logged in at {client.base_url} as {brandon.user} (a wrong password was refused)")
        page = client.payments()
        for p in page.payments:
            ctx.say(f"  ${p.dollars} {p.direction} {p.account} for: {p.memo}")
        memos = {p.memo for p in page.payments}
        ctx.check("Registration for PyCon" in memos, "the book's seed payments are missing")
        ctx.check(client.logout(), "logging out (a POST with the token) failed")
        ctx.check(client.payments().payments == [], "the payments still showed after logout")
        ctx.say("logged out with a POST carrying the token (a GET to /logout/ is refused)")


@CHAPTER11.step("django: a payment through the ModelForm; the message shows once")
def _pay(ctx: TourContext) -> None:
    from wirelab.web.djbank.accounts import BOOK_USERS

    brandon = BOOK_USERS[0]
    with _client(ctx) as client:
        ctx.check(client.login(brandon.user, brandon.password), "brandon could not log in")
        refused = client.pay("sam", -5, "a negative payment")
        ctx.check(not refused.accepted, "a negative payment was accepted")
        ctx.say(f"$-5 to sam: refused ({'; '.join(refused.page.errors)})")
        refused = client.pay(brandon.user, 5, "to myself")
        ctx.check(not refused.accepted, "a payment to oneself was accepted")
        ctx.say(f"$5 to {brandon.user}: refused ({'; '.join(refused.page.errors)})")
        reply = client.pay("sam", 12, "Tour of chapter 11")
        ctx.check(reply.accepted, f"the payment was refused: {reply.page.errors}")
        first = client.payments()
        ctx.check(first.messages == ["Payment successful."], f"messages: {first.messages}")
        ctx.say(f"$12 to sam: accepted; the next page says {first.messages[0]!r}")
        again = client.payments()
        ctx.check(again.messages == [], "the message showed a second time")
        ctx.say("and the page after that shows no message: messages are shown once")


@CHAPTER11.step("django: a payment without the CSRF token, or from another site, is refused")
def _csrf(ctx: TourContext) -> None:
    from wirelab.web.djbank.accounts import BOOK_USERS

    brandon = BOOK_USERS[0]
    with _client(ctx) as client:
        ctx.check(client.login(brandon.user, brandon.password), "brandon could not log in")
        before = len(client.payments().payments)
        missing = client.pay("sam", 99, "no token", forge="")
        ctx.check(missing.status == 403, f"no token: answered {missing.status}, not 403")
        forged = client.pay("sam", 99, "forged token", forge="x" * 64)
        ctx.check(forged.status == 403, f"a forged token: answered {forged.status}, not 403")
        client.origin = "https://attacker.example.net"
        cross = client.pay("sam", 99, "from another site")
        ctx.check(cross.status == 403, f"another site's Origin: answered {cross.status}")
        client.origin = client.base_url.rstrip("/")
        ctx.check(len(client.payments().payments) == before, "a refused payment was recorded")
        ctx.say("no token: 403; a forged token: 403; the real token from another Origin: 403")
        ctx.say("no money moved")


@CHAPTER11.step("django: the admin opens to the lab superuser, not to brandon")
def _admin(ctx: TourContext) -> None:
    from wirelab.web.djbank.accounts import ADMIN_USER, BOOK_USERS

    brandon = BOOK_USERS[0]
    with _client(ctx) as client:
        ctx.check(client.login(brandon.user, brandon.password), "brandon could not log in")
        where = client.request("GET", "admin/").headers.get("Location", "")
        ctx.check(where.startswith("/admin/login/"), f"brandon was not sent away: {where!r}")
        ctx.say(f"brandon at /admin/: sent to {where}")
    with _client(ctx) as client:
        reply = client.post(
            "admin/login/",
            {"username": ADMIN_USER, "password": ctx.lab.account.password, "next": "/admin/"},
        )
        ctx.check(reply.location == "/admin/", f"the superuser was refused ({reply.status})")
        listing = client.request("GET", "admin/djbank/payment/")
        ctx.check(listing.status_code == 200, f"the payments list answered {listing.status_code}")
        ctx.say(f"{ADMIN_USER} (the lab account's password) at /admin/: the payments list")
