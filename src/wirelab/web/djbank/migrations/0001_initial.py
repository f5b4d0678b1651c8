"""The payment table, with its bounds as CHECK constraints (made by makemigrations)."""

from typing import Any, ClassVar

from django.db import migrations, models  # type: ignore[import-untyped]


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[Any]] = [
        migrations.CreateModel(
            name="Payment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("debit", models.CharField(max_length=150)),
                ("credit", models.CharField(max_length=150, verbose_name="To account")),
                ("dollars", models.PositiveIntegerField()),
                ("memo", models.CharField(max_length=200)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ("id",),
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("dollars__gte", 1), ("dollars__lte", 100000)),
                        name="djbank_payment_dollars_in_range",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("debit", models.F("credit")), _negated=True),
                        name="djbank_payment_not_to_oneself",
                    ),
                ],
            },
        ),
    ]
