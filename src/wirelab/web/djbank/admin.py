"""The admin site: payments listed, searched and filtered (the superuser only)."""

from __future__ import annotations

from django.contrib import admin  # type: ignore[import-untyped]

from wirelab.web.djbank.models import Payment

__all__ = ["PaymentAdmin"]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """Payments in the admin: who paid whom, how much, for what."""

    list_display = ("id", "debit", "credit", "dollars", "memo", "created")
    list_filter = ("debit", "credit")
    search_fields = ("debit", "credit", "memo")
