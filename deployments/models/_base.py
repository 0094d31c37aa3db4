"""Shared pieces of the model modules."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


def _choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": [c.value for c in choices]}), name=name
    )
