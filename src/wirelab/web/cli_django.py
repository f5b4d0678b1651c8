"""``wirelab web django serve`` (chapter 11): the payments app on Django, on its own.

The lab serves the same app as its ``djbank`` service; this command runs it without the rest
of the lab, on the documented port 10503 unless ``-p`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import PortOption, ServeHostArgument, bind_port, err_console

if TYPE_CHECKING:
    from wirelab.lab.service import BoundEndpoint

__all__ = ["register"]

django_app = typer.Typer(
    name="django",
    help="Chapter 11: the payments app on Django (auth, a ModelForm, messages, the admin).",
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
    from wirelab.web.djbank.server import StandaloneLab, serve_until_stopped

    number = bind_port(port, "djbank", "https")
    hosts = tuple(h.strip() for h in allow_host or () if h.strip())
    lab = StandaloneLab(
        state_dir=state_dir(), bind_host=host, fixed_port=number, allowed_hosts=hosts
    )

    def ready(endpoints: Sequence[BoundEndpoint]) -> None:
        for ep in endpoints:
            where = format_address((ep.address, ep.port))
            err_console.print(
                f"listening at {where} (djbank on gunicorn, https; CA {lab.ca.cert_path})",
                markup=False,
            )

    serve_until_stopped(lab, ready)
    err_console.print("stopped", markup=False)


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``app`` (the ``wirelab web`` group)."""
    app.add_typer(django_app, name="django")
