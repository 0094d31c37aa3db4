"""The append-only, hash-chained audit trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.models.tickets import Ticket


class AuditEvent(models.Model):
    """An append-only, hash-chained record of something a person or the system did."""

    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["ticket", "id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def payload(self) -> dict[str, Any]:
        """The fields the hash covers (services.audit.canonical_hash is the encoding)."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor_name,
            "actor_id": self.actor_id,
            "action": self.action,
            "ticket": self.ticket_id,
            "data": self.data,
            "prev": self.prev_hash,
        }


class AuditChainHead(models.Model):
    """The single row that serialises appends to the audit chain."""

    last_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="audit_head_singleton")]

    def __str__(self) -> str:
        return self.last_hash


class AuditVerification(models.Model):
    """The outcome of one full walk of the chain (manage.py verify_audit or the nightly
    task), so that the audit page shows the last result without walking 1M events."""

    at = models.DateTimeField()
    ok = models.BooleanField()
    count = models.PositiveBigIntegerField()
    message = models.TextField()
    bad_event_id = models.BigIntegerField(null=True, blank=True)
    head = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(default=0)
    source = models.CharField(max_length=32)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {'intact' if self.ok else 'BROKEN'}"
