"""The payment form: a ModelForm over :class:`~.models.Payment`, with the bank's rules.

A payment is refused, with a message beside the field, when the amount is not a whole number
from 1 to :data:`~.models.MAX_DOLLARS`, the payee is not a known account, the payee is the
payer, or the memo is empty or longer than :data:`~.models.MAX_MEMO` characters. The payer
is never a field: the view sets it from the logged-in user.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms  # type: ignore[import-untyped]
from django.contrib.auth import get_user_model  # type: ignore[import-untyped]

from wirelab.web.djbank.models import MAX_DOLLARS, Payment

__all__ = ["PaymentForm"]


class PaymentForm(forms.ModelForm):  # type: ignore[misc]
    """``credit``, ``dollars`` and ``memo`` of a payment by ``payer``."""

    class Meta:
        model = Payment
        fields = ("credit", "dollars", "memo")
        labels: ClassVar[dict[str, str]] = {
            "credit": "To account",
            "dollars": "Dollars",
            "memo": "Memo",
        }

    dollars = forms.IntegerField(
        label="Dollars", min_value=1, max_value=MAX_DOLLARS, help_text=f"1 to {MAX_DOLLARS:,}"
    )

    def __init__(self, *args: Any, payer: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.payer = payer

    def clean_credit(self) -> str:
        credit = str(self.cleaned_data["credit"]).strip()
        if credit == self.payer:
            raise forms.ValidationError("You cannot pay yourself.", code="self")
        if not get_user_model().objects.filter(username=credit, is_active=True).exists():
            raise forms.ValidationError("No such account.", code="unknown")
        return credit

    def clean_memo(self) -> str:
        memo = str(self.cleaned_data["memo"]).strip()
        if not memo:
            raise forms.ValidationError("Say what the payment is for.", code="required")
        return memo

    def save(self, commit: bool = True) -> Payment:
        payment: Payment = super().save(commit=False)
        payment.debit = self.payer
        if commit:
            payment.save()
        return payment
