"""``wirelab web django serve|payments|pay`` (chapter 11): the payments app on Django.

The lab serves the app as its ``djbank`` service; ``serve`` runs it without the rest of the
lab, on the documented port 10503 unless ``-p`` says otherwise. ``payments`` and ``pay`` are
its clients (:class:`~wirelab.web.djbank.client.DjbankClient`): they log in through the form,
as a browser would, and trust the lab CA only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    bind_port,
    console,
    err_console,
    print_json,
)

if TYPE_CHECKING:
    from wirelab.lab.service import BoundEndpoint
    from wirelab.web.djbank.client import DjbankClient

__all__ = ["register"]

django_app = typer.Typer(
    name="django",
    help="The payments app on Django (auth, a ModelForm, messages, the admin).",
    no_args_is_help=True,
)


@django_app.command()
def serve(
    host: ServeHostArgument = "127.0.0.1",
    port: PortOption = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Another Host name the app answers (besides www.example.com and loopback).",
        ),
    ] = None,
) -> None:
    """Serve the Django payments app over HTTPS until Ctrl-C (port 10503 by default).

    gunicorn runs the app behind a buffering TLS front whose certificate, for
    www.example.com and the loopback addresses, is signed by the lab CA
    (STATE_DIR/ca/ca.pem). Log in as brandon (atigdng) or sam (xyzzy); the admin at
    /admin/ takes the user admin with the first lab account's password. The database is
    STATE_DIR/djbank/djbank.sqlite3, the lab's own.
    """
    from wirelab.config import state_dir
    from wirelab.net.addresses import format_address
    from wirelab.web.djbank.service import DjbankService
    from wirelab.web.serving import StandaloneContext, serve_standalone

    number = bind_port(port, "djbank", "https")
    hosts = tuple(h.strip() for h in allow_host or () if h.strip())
    lab = StandaloneContext(
        state_dir=state_dir(),
        bind_host=host,
        fixed_port=number,
        options={"djbank": {"allowed_hosts": hosts}},
    )

    def ready(endpoints: Sequence[BoundEndpoint]) -> None:
        for ep in endpoints:
            where = format_address((ep.address, ep.port))
            err_console.print(
                f"listening at {where} (djbank on gunicorn, https; CA {lab.ca.cert_path})",
                markup=False,
            )

    serve_standalone(DjbankService(), lab, ready)
    err_console.print("stopped", markup=False)


UserOption = Annotated[
    str, typer.Option("-u", "--user", help="Log in as this user (brandon or sam).")
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="WIRELAB_DJBANK_PASSWORD",
        help="The password (or $WIRELAB_DJBANK_PASSWORD). Default: the book's, for its users.",
        show_default=False,
    ),
]


def _logged_in(
    host: str | None, port: str | None, user: str, password: str | None, timeout: float
) -> DjbankClient:
    """A client of the lab's djbank (or HOST/-p), logged in as ``user``."""
    from wirelab.cli.common import lab_state, lab_target
    from wirelab.config import state_dir
    from wirelab.errors import ConfigError, ProtocolError
    from wirelab.net.addresses import format_address
    from wirelab.net.tlsctx import client_context
    from wirelab.web.djbank.accounts import BOOK_USERS
    from wirelab.web.djbank.client import DjbankClient

    if password is None:
        book = {login.user: login.password for login in BOOK_USERS}
        password = book.get(user)
    if password is None:
        password = typer.prompt(f"password for {user}", hide_input=True)
    state = lab_state()
    if state is not None:
        context = state.ssl_context()
    else:  # wirelab web django serve on its own: the same CA, in the state directory
        cafile = state_dir() / "ca" / "ca.pem"
        if not cafile.is_file():
            raise ConfigError(f"no lab CA at {cafile}: start the lab or wirelab web django serve")
        context = client_context(cafile=cafile)
    where, number = lab_target("djbank", host, port, endpoint="https")
    client = DjbankClient(
        f"https://{format_address((where, number))}/", ssl_context=context, timeout=timeout
    )
    try:
        if not client.login(user, password):
            raise ProtocolError(f"{client.base_url} refused the login of {user}")
    except BaseException:
        client.close()
        raise
    return client


@django_app.command()
def payments(
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Log in and list the user's payments, both ways (the app's / page)."""
    with _logged_in(host, port, user, password, timeout) as client:
        page = client.payments()
        client.logout()
    if json_out:
        print_json({"user": user, "payments": [vars(p) for p in page.payments]})
        return
    for p in page.payments:
        console.print(f"${p.dollars} {p.direction} {p.account} for: {p.memo}", markup=False)
    total = sum(p.dollars if p.direction == "from" else -p.dollars for p in page.payments)
    console.print(f"balance: {'+' if total >= 0 else '-'}${abs(total)}", markup=False)


@django_app.command()
def pay(
    to: Annotated[str, typer.Option("--to", help="The account paid (sam, brandon, psf, liz).")],
    dollars: Annotated[int, typer.Option("--dollars", help="Whole dollars, 1 to 100000.")],
    memo: Annotated[str, typer.Option("-m", "--message", help="The memo: what it is for.")],
    host: ClientHostArgument = None,
    port: PortOption = None,
    user: UserOption = "brandon",
    password: PasswordOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Log in and pay through the app's form (the ModelForm checks it; exit 1 if refused)."""
    from wirelab.errors import ProtocolError

    with _logged_in(host, port, user, password, timeout) as client:
        reply = client.pay(to, dollars, memo)
        shown = client.payments().messages if reply.accepted else []
        client.logout()
    if json_out:
        print_json(
            {
                "accepted": reply.accepted,
                "status": reply.status,
                "errors": reply.page.errors,
                "messages": shown,
            }
        )
    if not reply.accepted:
        why = "; ".join(reply.page.errors) or f"status {reply.status}"
        raise ProtocolError(f"the payment was refused: {why}", code=reply.status)
    if not json_out:
        for message in shown:
            console.print(message, markup=False)


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app`` (the ``wirelab web`` group)."""
    app.add_typer(django_app, name="django")
