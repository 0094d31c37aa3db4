"""Follow-ups owed after a change (post-deployment reviews, post-mortems) and per-user
preferences (the time zone pages are shown in)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.models._base import _choices_check
from deployments.models.runs import TerraformRun
from deployments.models.tickets import Ticket


class FollowUpKind(models.TextChoices):
    POST_DEPLOYMENT_REVIEW = "post_deployment_review", "Post-deployment review"
    POST_MORTEM = "post_mortem", "Post-mortem"


class FollowUp(models.Model):
    """Work a change leaves behind: a review due by ``due_at``, done when a lead completes it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="follow_ups")
    kind = models.CharField(max_length=32, choices=FollowUpKind.choices)
    # The apply that caused it (one follow-up of a kind per deployment).
    deployment_run = models.ForeignKey(
        TerraformRun, null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups"
    )
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_ups_completed",
    )
    what_happened = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    actions = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["done_at", "due_at"])]
        constraints = [
            _choices_check("kind", FollowUpKind, "followup_kind_valid"),
            models.CheckConstraint(
                condition=Q(done_at__isnull=True, completed_by__isnull=True)
                | Q(done_at__isnull=False, completed_by__isnull=False),
                name="followup_done_fields_together",
            ),
            models.UniqueConstraint(
                fields=["ticket", "kind", "deployment_run"], name="followup_one_per_deployment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for ticket #{self.ticket_id}"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None

    def is_overdue(self, now: dt.datetime) -> bool:
        """Not done and past its deadline."""
        return self.done_at is None and now >= self.due_at


class UserPreference(models.Model):
    """A person's settings: the time zone every page shows times in, and which emails they get."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    timezone = models.CharField(max_length=64, default="UTC")
    # True once the person chose it on the settings page (the browser's guess never overrides).
    timezone_chosen = models.BooleanField(default=False)
    # Email notifications: all off, or off per event group (notifications.events.EVENT_GROUPS);
    # emergencies and alarms are emailed regardless (notifications.events.MANDATORY_EMAIL_EVENTS).
    email_enabled = models.BooleanField(default=True)
    email_opt_out = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.timezone})"
