"""The hardened payments app: the book's ``app_improved.py`` with its remaining holes closed.

Same routes and pages as :mod:`.insecure` (the book's scraper reads either), but:

* identity lives in Flask's **signed session** (HMAC with a per-lab random key kept in the
  lab's state directory, never a constant in the code): a tampered cookie is an empty session;
* the session cookie is ``Secure``, ``HttpOnly`` and ``SameSite=Lax``; the app is served on
  HTTPS (the lab CA); sessions end after an hour;
* at login the session is cleared and gets a random **CSRF token** (``secrets``, 256 bits);
  every ``POST /pay`` must carry it, compared in constant time, before anything else is looked
  at: a missing or forged token is ``403``, whoever's cookie came along;
* messages are **flashed** through the session, never taken from the URL;
* templates **autoescape**, and a strict **Content-Security-Policy** (``default-src 'none'``;
  styles from the app itself only, no script at all) means that even an escaping mistake could
  not run script; ``X-Content-Type-Options``, ``Referrer-Policy`` and ``frame-ancestors``
  besides;
* passwords are compared as salted hashes in constant time; a login ``POST`` whose ``Origin``
  is another origin is refused (login CSRF); after :data:`MAX_FAILURES` failed logins in a
  minute, an account's logins are refused (429) for the rest of that minute;
* payments are validated strictly: a known account other than one's own, whole dollars from 1
  to :data:`~.store.MAX_DOLLARS`, a memo of printable text within :data:`~.store.MAX_MEMO`;
  SQL only ever sees parameters;
* no debug mode; logout clears the whole session.

Configured by the environment (``wirelab.web.bank.service`` sets it): ``WIRELAB_BANK_HARDENED_DB``
(the SQLite file) and ``WIRELAB_BANK_SECRET`` (a file holding the session key).
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
)
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as BaseResponse

from wirelab.web.bank.store import (
    MAX_ACCOUNT,
    MAX_DOLLARS,
    MAX_MEMO,
    PAYEES,
    USERS,
    BankFull,
    PaymentStore,
)

__all__ = ["CSP", "LoginThrottle", "create_app", "hardened", "validate_payment"]

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
#: No script, no frames, no plugins; styles and images from the app only; forms post here.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The longest form body the app reads (bytes): four short fields.
MAX_FORM = 4096
#: Why a request was refused, by status.
_REFUSALS = {
    400: "The request was not understood.",
    403: "Refused: the form's CSRF token is missing or wrong (a page elsewhere tried to "
    "make you pay).",
    404: "There is no such page.",
    405: "That method is not allowed here.",
    413: "The form is too large.",
    429: "Too many failed logins for this account: wait a minute and try again.",
}
#: Failed logins an account may have within :data:`LOGIN_WINDOW` seconds before its logins
#: are refused (429) until the window has passed; accounts tracked at most.
MAX_FAILURES = 10
LOGIN_WINDOW = 60.0
MAX_TRACKED = 1000


class LoginThrottle:
    """Counts failed logins per account name, bounded, thread-safe (gunicorn's threads)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = LOGIN_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(name, ()) if now - t < self.window]
        if kept:
            self._failures[name] = kept
        else:
            self._failures.pop(name, None)
        return kept

    def blocked(self, name: str) -> bool:
        """True while ``name`` has had too many failures in the window."""
        with self._lock:
            return len(self._recent(name, time.monotonic())) >= self.limit

    def failed(self, name: str) -> None:
        """Count one failure for ``name`` (forgetting the stalest account when full)."""
        now = time.monotonic()
        with self._lock:
            if name not in self._failures and len(self._failures) >= MAX_TRACKED:
                for old in list(self._failures):
                    self._recent(old, now)  # forgets accounts whose failures have expired
                if len(self._failures) >= MAX_TRACKED:
                    self._failures.pop(next(iter(self._failures)))  # the longest tracked
            self._failures.setdefault(name, []).append(now)
            del self._failures[name][: -self.limit]


def validate_payment(user: str, account: str, dollars: str, memo: str) -> str | None:
    """What is wrong with this payment (one line for the form), or ``None`` if it may go."""
    if not (account and dollars and memo):
        return "Please fill in all three fields"
    if len(account) > MAX_ACCOUNT or len(memo) > MAX_MEMO or len(dollars) > 7:
        return f"Too long: accounts are at most {MAX_ACCOUNT} characters, memos {MAX_MEMO}"
    if not (dollars.isascii() and dollars.isdigit()):
        return "Dollars must be a whole number"
    if not 0 < int(dollars) <= MAX_DOLLARS:
        return f"Dollars must be between 1 and {MAX_DOLLARS}"
    if account == user:
        return "You cannot pay yourself"
    if account not in USERS and account not in PAYEES:
        return "No such account"
    if not memo.isprintable():
        return "The memo must be printable text"
    return None


def _load_secret(path: str | None) -> bytes:
    if path:
        key = Path(path).read_bytes()
        if len(key) >= 32:
            return key
    return secrets.token_bytes(32)  # standalone: sessions last as long as the process


def create_app(db_path: str | Path, secret_file: str | None = None) -> Flask:
    """The hardened app over the store at ``db_path``, signing sessions with the key in
    ``secret_file`` (a fresh random key if none)."""
    store = PaymentStore(db_path)
    hashes = {user: generate_password_hash(password) for user, password in USERS.items()}
    decoy = generate_password_hash(secrets.token_hex(16))  # same work for unknown users
    throttle = LoginThrottle()
    app = Flask(
        __name__,
        static_folder=str(STATIC),
        static_url_path="/static",
        template_folder=str(TEMPLATES),
    )
    app.config.update(
        SECRET_KEY=_load_secret(secret_file),
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
        MAX_CONTENT_LENGTH=MAX_FORM,
        MAX_FORM_MEMORY_SIZE=MAX_FORM,
        DEBUG=False,
    )
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]

    def page(name: str, code: int = 200, **context: Any) -> Response:
        html = render_template(name, insecure=False, max_account=MAX_ACCOUNT, **context)
        return Response(html, code, content_type="text/html; charset=utf-8")

    @app.after_request
    def headers(response: Response) -> BaseResponse:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def refused(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = _REFUSALS.get(status, "The request was refused.")
        if status == 403:
            sent = "sent" if current_user() is not None else "did not send"
            detail += f" (Your browser {sent} your session cookie with it.)"
        return page("refused.html", status, status=status, reason=exc.name, detail=detail)

    def current_user() -> str | None:
        user = session.get("username")
        return user if isinstance(user, str) and user in USERS else None

    @app.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse:
        username = request.form.get("username", "")[:MAX_ACCOUNT]
        password = request.form.get("password", "")
        title = None
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.host:
                abort(400)  # a login form posted from another site: login CSRF
            if throttle.blocked(username):
                abort(429)
            good = check_password_hash(hashes.get(username, decoy), password)
            if not (good and username in USERS):
                throttle.failed(username)
            else:
                session.clear()
                session.permanent = True
                session["username"] = username
                session["csrf_token"] = secrets.token_urlsafe(32)
                return redirect("/")
            title = "Please try again"
        return page("login.html", username=username, title=title)

    @app.route("/logout")
    def logout() -> BaseResponse:
        session.clear()
        return redirect("/login")

    @app.route("/")
    def index() -> BaseResponse:
        user = current_user()
        if user is None:
            return redirect("/login")
        return page(
            "index.html",
            username=user,
            payments=store.payments_of(user),
            flash_messages=get_flashed_messages(),
        )

    @app.route("/pay", methods=["GET", "POST"])
    def pay() -> BaseResponse:
        if request.method == "POST":
            expected = session.get("csrf_token")
            given = request.form.get("csrf_token", "")
            if not (
                isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())
            ):
                abort(403)
        user = current_user()
        if user is None:
            return redirect("/login")
        account = request.form.get("account", "").strip()
        dollars = request.form.get("dollars", "").strip()
        memo = request.form.get("memo", "").strip()
        complaint = None
        status = 200
        if request.method == "POST":
            complaint = validate_payment(user, account, dollars, memo)
            if complaint is None:
                try:
                    store.add_payment(user, account, int(dollars), memo)
                except BankFull:
                    complaint, status = "The bank is full", 503
                else:
                    flash("Payment successful")
                    return redirect("/")
            else:
                status = 400
        return page(
            "pay.html",
            status,
            complaint=complaint,
            account=account[:MAX_ACCOUNT],
            dollars=dollars[:7],
            memo=memo[:MAX_MEMO],
            csrf_token=session.get("csrf_token", ""),
        )

    return app


def hardened() -> Flask:
    """The app as gunicorn loads it (``wirelab.web.bank.hardened:hardened()``)."""
    return create_app(
        os.environ.get("WIRELAB_BANK_HARDENED_DB") or "bank-hardened.db",
        os.environ.get("WIRELAB_BANK_SECRET"),
    )
