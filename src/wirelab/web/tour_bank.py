"""Chapter 11 tour steps (bank); they join :data:`wirelab.web.chapter.CHAPTER11`.

The payments apps as the book's scraper sees them, the hardened app's refusals, then the two
attacks in a real browser, each verdict printed. Where Chromium cannot run, the browser steps
are skipped with the one-line reason (a failure under ``WIRELAB_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

from wirelab.lab.tour import TourContext
from wirelab.web.chapter import CHAPTER11

__all__ = ["CHAPTER11"]

#: What a forger puts where the CSRF token goes.
FORGED = "forged-" + "0" * 36
#: Seconds a browser step may take (a launch, two logins, two attacks; more under load).
BROWSER_STEP_TIMEOUT = 120.0


@CHAPTER11.step("the book's scraper logs in to both payments apps and totals brandon's payments")
def _scraper(ctx: TourContext) -> None:
    from wirelab.web.bank.client import BankClient
    from wirelab.web.bank.proofs import VICTIM
    from wirelab.web.bank.urls import BankURLs

    urls = BankURLs.from_lab(ctx.lab)
    for which in ("insecure", "hardened"):
        tls = ctx.ssl_context() if which == "hardened" else None
        with BankClient(urls.bank(which), ssl_context=tls) as client:
            ctx.check(client.login(*VICTIM), f"brandon could not log in to the {which} app")
            sent = [p for p in client.payments() if p.direction == "to"]
        total = sum(p.dollars for p in sent)
        ctx.say(f"{which} ({urls.bank(which)}): {len(sent)} payments made, ${total} in all")
        ctx.check(any(p.memo == "Registration for PyCon" for p in sent), "the seed is missing")


@CHAPTER11.step("the hardened app refuses a forged CSRF token, a forged cookie and bad payments")
def _refusals(ctx: TourContext) -> None:
    from wirelab.web.bank.client import BankClient
    from wirelab.web.bank.proofs import VICTIM
    from wirelab.web.bank.urls import BankURLs

    urls = BankURLs.from_lab(ctx.lab)
    with BankClient(urls.insecure) as forger:
        forger.session.cookies.set("username", "sam")
        page = forger.index_html()
        ctx.say(
            "insecure: a hand-made cookie username=sam is welcomed: "
            + ("'Welcome, sam'" if "Welcome, sam" in page else "(not welcomed?)")
        )
        ctx.check("Welcome, sam" in page, "the insecure app did not believe a forged cookie")
    with BankClient(urls.hardened, ssl_context=ctx.ssl_context()) as forger:
        forger.session.cookies.set("session", "eyJ1c2VybmFtZSI6InNhbSJ9.forged.signature")
        status = forger.request("GET", "").status_code
    ctx.say(f"hardened: a forged session cookie -> {status} (to /login)")
    ctx.check(status == 302, "a forged session cookie was accepted")
    with BankClient(urls.hardened, ssl_context=ctx.ssl_context()) as client:
        ctx.check(client.login(*VICTIM), "brandon could not log in")
        cases = [  # (what, the result, the status it must get)
            ("no CSRF token", client.pay("sam", 5, "no token", csrf_token=None), 403),
            ("a forged CSRF token", client.pay("sam", 5, "forged", csrf_token=FORGED), 403),
            ("-5 dollars", client.pay("sam", "-5", "negative"), 400),
            ("a payment to oneself", client.pay("brandon", 5, "self"), 400),
            ("a <script> account", client.pay("<script>", 5, "xss"), 400),
            ("SQL in the account", client.pay("sam' OR '1'='1", 5, "sql"), 400),
        ]
    for what, result, expected in cases:
        why = result.complaint or (
            "the CSRF token is missing or wrong" if result.status == 403 else ""
        )
        ctx.say(f"hardened: {what} -> {result.status}: {why}")
        ctx.check(
            not result.accepted and result.status == expected,
            f"the hardened app answered {what} with {result.status}, not {expected}",
        )


def _browser_step(ctx: TourContext, attack: str) -> None:
    from wirelab.web.bank.proofs import prove_all
    from wirelab.web.bank.urls import BankURLs
    from wirelab.web.browser import lab_browser, unavailable_reason

    why = unavailable_reason()
    if why is not None:
        ctx.skip(why)
    urls = BankURLs.from_lab(ctx.lab)
    with lab_browser(ca_file=ctx.lab.ca) as browser:
        verdicts = prove_all(browser, urls, attacks=(attack,), ssl_context=ctx.ssl_context())
    for verdict in verdicts:
        ctx.say(verdict.line())
    wrong = [f"{v.attack} on {v.bank}" for v in verdicts if not v.ok]
    ctx.check(not wrong, f"not what the chapter teaches: {', '.join(wrong)}")


@CHAPTER11.step(
    "XSS in Chromium: it runs on the insecure app, and is inert on the hardened one",
    timeout=BROWSER_STEP_TIMEOUT,
)
def _xss(ctx: TourContext) -> None:
    _browser_step(ctx, "xss")


@CHAPTER11.step(
    "CSRF in Chromium: it pays on the insecure app, and is refused by the hardened one",
    timeout=BROWSER_STEP_TIMEOUT,
)
def _csrf(ctx: TourContext) -> None:
    _browser_step(ctx, "csrf")
