"""The one model: a payment from one account to another (the book's ``Payment``).

Accounts are user names, as in the book; the form (:mod:`.forms`) checks that the payee is
a known account. Bounds are in the database too (``CHECK`` constraints), so no path around
the form can store a negative, zero or huge amount.
"""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

__all__ = ["MAX_DOLLARS", "MAX_MEMO", "Payment"]

#: The largest single payment, in dollars.
MAX_DOLLARS = 100_000
#: The longest memo, in characters.
MAX_MEMO = 200


class Payment(models.Model):  # type: ignore[misc]
    """``dollars`` from ``debit`` to ``credit``, with a memo."""

    debit = models.CharField(max_length=150)
    credit = models.CharField(max_length=150, verbose_name="To account")
    dollars = models.PositiveIntegerField()
    memo = models.CharField(max_length=MAX_MEMO)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(dollars__gte=1) & models.Q(dollars__lte=MAX_DOLLARS),
                name="djbank_payment_dollars_in_range",
            ),
            models.CheckConstraint(
                condition=~models.Q(debit=models.F("credit")),
                name="djbank_payment_not_to_oneself",
            ),
        )

    def __str__(self) -> str:
        return f"${self.dollars} from {self.debit} to {self.credit}: {self.memo}"
