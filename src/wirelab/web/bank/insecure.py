"""The deliberately insecure payments app (the book's ``app_insecure.py``), kept insecure.

What the book's app does, flaws included, because they are the lesson:

* ``/login`` checks the book's two logins and sets a **plain, unsigned** ``username`` cookie:
  anyone can forge it (``Cookie: username=brandon``);
* ``/`` shows the payments of that cookie's user and a message taken from the ``flash``
  **query parameter**: reflected XSS;
* templates render with **autoescaping off**: every field (account, memo, the flash message,
  the login name) is stored or reflected XSS;
* ``/pay`` takes ``account``, ``dollars`` and ``memo`` and checks nothing else: CSRF.

What it adds, none of it a fix: a banner on every page saying it is deliberately insecure and
bound to loopback; the store's limits (field lengths, at most 9 digits of dollars, a cap on
rows) so it cannot be made to eat the disk; no debug mode (the Werkzeug debugger would be
remote code execution). The lab binds it to loopback only, whatever ``--host`` says.

Configured by the environment (``wirelab.web.bank.service`` sets it): ``WIRELAB_BANK_INSECURE_DB``,
the SQLite file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from wirelab.web.bank.store import MAX_ACCOUNT, MAX_DOLLARS, MAX_MEMO, USERS, BankFull, PaymentStore

__all__ = ["create_app", "insecure"]

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
#: The longest flash message echoed (characters): unescaped, but bounded.
MAX_FLASH = 2000


def create_app(db_path: str | Path) -> Flask:
    """The insecure app over the store at ``db_path``."""
    from jinja2 import Environment, FileSystemLoader

    store = PaymentStore(db_path)
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    # The book's bare Environment: autoescape is off, on purpose.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False)  # noqa: S701

    def render(name: str, code: int = 200, **context: Any) -> Response:
        html = env.get_template(name).render(insecure=True, max_account=MAX_ACCOUNT, **context)
        return Response(html, code, content_type="text/html; charset=utf-8")

    @app.errorhandler(HTTPException)
    def refused(exc: HTTPException) -> Response:  # with the banner, like every page
        status = exc.code or 500
        detail = exc.description or "The request was refused."
        return render("refused.html", status, status=status, reason=exc.name, detail=detail)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse:
        username = request.form.get("username", "")[:MAX_ACCOUNT]
        password = request.form.get("password", "")
        title = None
        if request.method == "POST":
            if USERS.get(username) == password:
                response = redirect("/")
                response.set_cookie("username", username)  # plain and unsigned: the flaw
                return response
            title = "Please try again"
        return render("login.html", username=username, title=title)

    @app.route("/logout")
    def logout() -> BaseResponse:
        response = redirect("/login")
        response.set_cookie("username", "")
        return response

    @app.route("/")
    def index() -> BaseResponse:
        username = request.cookies.get("username", "")[:MAX_ACCOUNT]
        if not username:
            return redirect("/login")
        flash = request.args.get("flash", "")[:MAX_FLASH]  # reflected as it came: the flaw
        return render(
            "index.html",
            username=username,
            payments=store.payments_of(username),
            flash_messages=[flash] if flash else [],
        )

    @app.route("/pay", methods=["GET", "POST"])
    def pay() -> BaseResponse:
        username = request.cookies.get("username", "")[:MAX_ACCOUNT]
        if not username:
            return redirect("/login")
        account = request.form.get("account", "").strip()
        dollars = request.form.get("dollars", "").strip()
        memo = request.form.get("memo", "").strip()
        complaint = None
        if request.method == "POST":
            if account and dollars.isdigit() and memo:
                if len(dollars) > 9 or len(account) > MAX_ACCOUNT or len(memo) > MAX_MEMO:
                    complaint = "Too long"
                elif int(dollars) > MAX_DOLLARS:
                    complaint = "Too much money"
                elif int(dollars) == 0:
                    complaint = "Dollars must be more than zero"
                else:
                    try:
                        store.add_payment(username, account, int(dollars), memo)
                    except BankFull:
                        return render("pay.html", 503, complaint="The bank is full")
                    return redirect("/?flash=Payment+successful")
            else:
                complaint = (
                    "Dollars must be an integer"
                    if not dollars.isdigit()
                    else "Please fill in all three fields"
                )
        return render("pay.html", complaint=complaint, account=account, dollars=dollars, memo=memo)

    return app


def insecure() -> Flask:
    """The app as gunicorn loads it (``wirelab.web.bank.insecure:insecure()``)."""
    return create_app(os.environ.get("WIRELAB_BANK_INSECURE_DB") or "bank-insecure.db")
