"""``wirelab web bank ...`` (chapter 11): the payments apps, and the attacks on them in Chromium.

* ``wirelab web bank serve [HOST] [-p PORT] [--app insecure|hardened|attacker]`` runs one app
  on its own until Ctrl-C (ports 10500, 10501 and 10502 by default; the insecure app binds
  loopback whatever HOST says);
* ``wirelab web bank attack [xss|csrf|all] [--bank insecure|hardened|all] [--json]
  [--screenshots DIR]`` runs the attacks in headless Chromium against the running lab's banks
  and prints each verdict; it exits 0 when every attack did what the chapter teaches (works
  on the insecure bank, fails on the hardened one), else 1.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    JsonOption,
    PortOption,
    ServeHostArgument,
    bind_port,
    console,
    err_console,
    lab_state,
    print_json,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from wirelab.lab.service import BoundEndpoint

__all__ = ["register"]

bank_app = typer.Typer(
    name="bank",
    help="The payments apps on Flask (insecure, hardened), the attacker's site, the attacks.",
    no_args_is_help=True,
)


class AppName(StrEnum):
    insecure = "insecure"
    hardened = "hardened"
    attacker = "attacker"


class AttackName(StrEnum):
    xss = "xss"
    csrf = "csrf"
    all = "all"


class BankName(StrEnum):
    insecure = "insecure"
    hardened = "hardened"
    all = "all"


_WHAT = {
    AppName.insecure: "the deliberately insecure payments app, http",
    AppName.hardened: "the hardened payments app, https",
    AppName.attacker: "the attacker's site, http",
}


@bank_app.command()
def serve(
    host: ServeHostArgument = "127.0.0.1",
    port: PortOption = None,
    app: Annotated[
        AppName, typer.Option("--app", help="Which app: insecure, hardened or attacker.")
    ] = AppName.insecure,
) -> None:
    """Serve one payments app (or the attacker's site) until Ctrl-C.

    Ports 10500 (insecure), 10501 (hardened, HTTPS with a lab-CA certificate for
    www.example.com and loopback: STATE_DIR/ca/ca.pem) and 10502 (attacker) by default. The
    insecure app binds 127.0.0.1 whatever HOST says. Log in as brandon (atigdng) or sam
    (xyzzy). The databases are the lab's, under STATE_DIR/bank/. Served alone, the
    attacker's pages attack the banks at their default ports (serve them too).
    """
    from wirelab.config import state_dir
    from wirelab.net.addresses import format_address
    from wirelab.web.bank.service import BankService
    from wirelab.web.serving import StandaloneContext, serve_standalone

    number = bind_port(port, "bank", app.value)
    lab = StandaloneContext(state_dir=state_dir(), bind_host=host, fixed_port=number)

    def ready(endpoints: Sequence[BoundEndpoint]) -> None:
        for ep in endpoints:
            where = format_address((ep.address, ep.port))
            err_console.print(f"listening at {where} ({_WHAT[app]})", markup=False)

    serve_standalone(BankService(only=app.value), lab, ready)
    err_console.print("stopped", markup=False)


@bank_app.command()
def attack(
    which: Annotated[
        AttackName, typer.Argument(help="The attack: xss, csrf or all.")
    ] = AttackName.all,
    bank: Annotated[
        BankName, typer.Option("--bank", help="The bank attacked: insecure, hardened or all.")
    ] = BankName.all,
    json_output: JsonOption = False,
    screenshots: Annotated[
        Path | None,
        typer.Option(
            "--screenshots",
            help="Save each verdict's page as ATTACK-BANK.png in this directory.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run the XSS and CSRF attacks in headless Chromium against the running lab's banks.

    The victim (brandon) logs in through the bank's form, then visits the attacker's page.
    Each verdict says what was measured: money moved or not, a cookie stolen or not, the
    payload shown as text, the bank's refusal. Exits 1 unless every attack worked on the
    insecure bank and failed on the hardened one.
    """
    from wirelab.errors import ConfigError, WirelabError
    from wirelab.web.bank.proofs import ATTACKS, BANKS, prove_all, screenshot_dir
    from wirelab.web.bank.urls import BankURLs
    from wirelab.web.browser import lab_browser

    state = lab_state()
    if state is None:
        raise ConfigError("no lab runs: start one with `wirelab lab up`")
    urls = BankURLs.from_lab(state)
    attacks = ATTACKS if which is AttackName.all else (which.value,)
    banks = BANKS if bank is BankName.all else (bank.value,)
    if screenshots is not None:
        screenshot_dir(screenshots)  # a bad directory is one line before Chromium starts
    with lab_browser(ca_file=state.ca) as browser:
        verdicts = prove_all(
            browser,
            urls,
            attacks=attacks,
            banks=banks,
            screenshots=screenshots,
            ssl_context=state.ssl_context(),
        )
    if json_output:
        print_json([v.to_json() for v in verdicts])
    else:
        for verdict in verdicts:
            mark = "as expected" if verdict.ok else "UNEXPECTED"
            console.print(f"{verdict.line()} ({mark})", markup=False)
            if verdict.screenshot:
                console.print(f"  screenshot: {verdict.screenshot}", markup=False)
    wrong = [v for v in verdicts if not v.ok]
    if wrong:
        raise WirelabError(
            f"{len(wrong)} attack(s) did not do what the chapter teaches: "
            + "; ".join(f"{v.attack} on {v.bank}" for v in wrong)
        )


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app`` (the ``wirelab web`` group)."""
    app.add_typer(bank_app, name="bank")
