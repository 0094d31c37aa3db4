"""Freezes (blackout periods) and per-user calendar feed tokens."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from deployments.models.environments import Environment


class Freeze(models.Model):
    """A one-off blackout: no normal deploy of the environment may begin inside
    [starts_at, ends_at), window or not. An emergency ignores it."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="freezes")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="freezes_declared",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["environment", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="freeze_ends_after_start"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="freeze_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.environment} frozen {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M}"


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeedToken(models.Model):
    """The secret in a person's iCalendar feed URLs; rotating it kills old subscriptions."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"calendar feed of {self.user}"
