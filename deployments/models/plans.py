"""Speculative plans: a plan only, of any commit (a pull request's head), never applied."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.choices import RunStatus
from deployments.models._base import _choices_check
from deployments.models.environments import Environment


class SpeculativePlan(models.Model):
    """`terraform plan` of one commit in one environment, with plan credentials, for a pull
    request's check: its log, exit code and summary are kept; its plan file is not. No ticket,
    nothing to approve: no path leads from here to an apply."""

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="speculative_plans"
    )
    commit_sha = models.CharField(max_length=40)
    pull_request_url = models.URLField(blank=True, max_length=500)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    # {"add", "change", "destroy", "resources": [...], ...} as a ticket plan's summary.
    summary = models.JSONField(default=dict, blank=True)
    has_changes = models.BooleanField(null=True)
    error = models.TextField(blank=True)
    # Redacted by the runner; bounded (head and tail kept, the middle dropped and counted).
    log = models.TextField(blank=True)
    terraform_version = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    dispatch_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-created_at", "-id"], name="specplan_env_newest"),
            models.Index(fields=["status", "created_at"], name="specplan_status_age"),
        ]
        constraints = [
            _choices_check("status", RunStatus, "specplan_status_valid"),
            models.CheckConstraint(
                condition=Q(commit_sha__regex=r"^[0-9a-f]{40}$"), name="specplan_commit_sha_hex40"
            ),
        ]

    def __str__(self) -> str:
        return f"speculative plan #{self.pk} of {self.commit_sha[:10]} in {self.environment}"
