"""API keys (stored as a SHA-256 digest, never the secret) and Idempotency-Key records."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class ApiKeyScope(models.TextChoices):
    FULL = "full", "Full (everything the user may do)"
    CI = "ci", "CI (file tickets, plan, post checks and evidence, read)"


class ApiKey(models.Model):
    """A named machine credential of one user: shown once, then only its prefix is known."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    # The first characters of the key: shown to people and used to find the row.
    prefix = models.CharField(max_length=16, db_index=True)
    # SHA-256 (hex) of the whole key; the key itself is never stored.
    digest = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.FULL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=[c.value for c in ApiKeyScope]),
                name="apikey_scope_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self) -> bool:
        """Past its expiry date (keys without one never expire)."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        """active, expired or revoked, for people."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired() else "active"


class IdempotencyRecord(models.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed for retries."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    request_digest = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder, null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
