"""The app's views: the payments page, the payment form, and a Content-Security-Policy.

As in the book, ``/`` lists the user's payments (GET and HEAD only) and ``/pay/`` takes a
payment (GET shows the form, POST makes it, adds "Payment successful." to the messages and
redirects to ``/``). Unlike the book, logging out is a POST (Django's ``LogoutView``): a GET
that changes state is a CSRF hole, and any page could have logged a user out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.contrib import messages  # type: ignore[import-untyped]
from django.contrib.auth.decorators import login_required  # type: ignore[import-untyped]
from django.db.models import Q  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.shortcuts import redirect, render  # type: ignore[import-untyped]
from django.views.decorators.http import (  # type: ignore[import-untyped]
    require_http_methods,
    require_safe,
)

from wirelab.web.djbank.forms import PaymentForm
from wirelab.web.djbank.models import Payment
from wirelab.web.djbank.settings import CONTENT_SECURITY_POLICY

__all__ = ["ContentSecurityPolicyMiddleware", "index_view", "pay_view"]

#: The message a successful payment leaves, as in the book.
PAID = "Payment successful."


def _rows(payments: Any, username: str) -> Iterator[dict[str, Any]]:
    for payment in payments:
        outgoing = payment.debit == username
        yield {
            "dollars": payment.dollars,
            "memo": payment.memo,
            "prep": "to" if outgoing else "from",
            "account": payment.credit if outgoing else payment.debit,
        }


@require_safe  # type: ignore[untyped-decorator]
@login_required  # type: ignore[untyped-decorator]
def index_view(request: HttpRequest) -> HttpResponse:
    """The logged-in user's payments, both ways, and any messages (shown once)."""
    username = request.user.get_username()
    payments = Payment.objects.filter(Q(credit=username) | Q(debit=username))
    return render(request, "djbank/index.html", {"payments": list(_rows(payments, username))})


@require_http_methods(["GET", "POST"])  # type: ignore[untyped-decorator]
@login_required  # type: ignore[untyped-decorator]
def pay_view(request: HttpRequest) -> HttpResponse:
    """The payment form; a valid POST pays and redirects to ``/``."""
    payer = request.user.get_username()
    form = PaymentForm(request.POST or None, payer=payer)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, PAID)
        return redirect("index")
    status = 400 if request.method == "POST" else 200
    return render(request, "djbank/pay.html", {"form": form}, status=status)


class ContentSecurityPolicyMiddleware:
    """Adds :data:`~.settings.CONTENT_SECURITY_POLICY` to every response (Django 5.2 has none).

    A second line of defence behind autoescaping: a script that slipped into a page would
    still not run, nor send a form anywhere else.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
