"""Approvals and rejections."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.choices import Role
from deployments.models._base import _choices_check
from deployments.models.runs import TerraformRun
from deployments.models.tickets import Ticket


class Approval(models.Model):
    """One person's approval of one saved plan, under the role it counts for."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    # The rule's roles the approver held when approving (a person may hold several).
    held_roles = models.JSONField(default=list)
    plan_run = models.ForeignKey(TerraformRun, on_delete=models.PROTECT, related_name="approvals")
    plan_sha256 = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the ticket entered awaiting_approval (its status_changed_at when approved): the
    # approval waited from here (deployments.selectors.metrics). Null on rows older than the field
    # that no history could date (migration 0017).
    waiting_since = models.DateTimeField(null=True, blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        # The metrics' approval waits read approvals by when they were given.
        indexes = [models.Index(fields=["created_at"], name="approval_created_at")]
        constraints = [
            # A person counts once per ticket, whatever roles they hold.
            models.UniqueConstraint(
                fields=["ticket", "approver"],
                condition=Q(voided_at__isnull=True),
                name="approval_one_standing_per_person",
            ),
            models.UniqueConstraint(
                fields=["plan_run", "approver"], name="approval_once_per_plan_per_person"
            ),
            _choices_check("role", Role, "approval_role_valid"),
            models.CheckConstraint(
                condition=Q(plan_sha256__regex=r"^[0-9a-f]{64}$"), name="approval_plan_sha256_hex64"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved ticket {self.ticket_id} as {self.role}"

    @property
    def is_void(self) -> bool:
        return self.voided_at is not None


class Rejection(models.Model):
    """A lead's refusal of a ticket, with the reason; the ticket ends rejected."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="rejections")
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rejections"
    )
    reason = models.TextField()
    plan_run = models.ForeignKey(
        TerraformRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="rejection_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.rejected_by} rejected ticket {self.ticket_id}"
