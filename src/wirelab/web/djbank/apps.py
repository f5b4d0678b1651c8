"""The Django application configuration (label ``djbank``, as in the book)."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]

__all__ = ["DjbankConfig"]


class DjbankConfig(AppConfig):  # type: ignore[misc]
    """The payments app."""

    name = "wirelab.web.djbank"
    label = "djbank"
    verbose_name = "Payments (chapter 11)"
    default_auto_field = "django.db.models.BigAutoField"
