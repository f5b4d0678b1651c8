"""The lab service ``djbank``: the Django payments app over HTTPS on www.example.com.

A :class:`~wirelab.web.serving.WSGIService`: one gunicorn child (one ``gthread`` worker)
runs :func:`wirelab.web.djbank.wsgi.application_from_environment` on a private loopback
socket, behind the buffering front on the lab's ``https`` endpoint (10503, a lab-CA
certificate for ``www.example.com`` and the loopback addresses). HTTPS only: the app's
cookies are ``Secure`` (and ``__Host-``), so over plain HTTP no login could last.

Its data directory is ``STATE_DIR/djbank`` (:mod:`wirelab.web.djbank.config`): the database
survives a lab restart, and the superuser ``admin`` takes the first lab account's password.
"""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import LabContext
from wirelab.web.djbank.config import DATA_ENV
from wirelab.web.serving import BoundWeb, WebEndpoint, WSGIService

__all__ = ["DATA_ENV", "DjbankService", "data_dir"]

WWW_HOST = "www.example.com"


def data_dir(lab: LabContext) -> str:
    """The app's data directory in ``lab``'s state directory."""
    return str(lab.state_dir / "djbank")


class DjbankService(WSGIService):
    """The chapter 11 payments app on Django, under gunicorn behind the TLS front."""

    name = "djbank"
    host = WWW_HOST
    chapter = 11
    description = "the payments app on Django: auth, a ModelForm, messages, admin (HTTPS)"
    app = "wirelab.web.djbank.wsgi:application_from_environment()"
    threads = 8
    max_body = 64 * 1024  # a payment or a login is a few hundred bytes

    def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
        return (WebEndpoint("https", tls=True),)

    def environment(self, lab: LabContext, bound: BoundWeb) -> dict[str, str]:
        """Prepare the data directory; tell the child where it is.

        ``lab.options["djbank"]["allowed_hosts"]`` adds Host names the app answers (``wirelab
        web django serve --allow-host``).
        """
        from pathlib import Path

        from wirelab.web.djbank.config import DEFAULT_HOSTS, prepare

        extra = tuple(str(h) for h in lab.options.get(self.name, {}).get("allowed_hosts", ()))
        where = data_dir(lab)
        prepare(
            Path(where),
            admin_password=lab.accounts[0].password,
            allowed_hosts=(*DEFAULT_HOSTS, *extra),
        )
        return {DATA_ENV: where}


SERVICES = (DjbankService(),)
