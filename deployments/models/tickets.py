"""Deployment tickets."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.choices import ChangeType, RollbackMode, TicketStatus
from deployments.models._base import _choices_check
from deployments.models.environments import Environment
from deployments.models.stacks import Stack


class Ticket(models.Model):
    """A request to deploy one commit of the infrastructure repository to one environment."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="tickets")
    # The Terraform root it changes (docs/stacks.md); unset on save: Stack.default().
    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="tickets")
    commit_sha = models.CharField(max_length=40)
    change_type = models.CharField(
        max_length=16, choices=ChangeType.choices, default=ChangeType.NORMAL
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets"
    )
    status = models.CharField(
        max_length=24, choices=TicketStatus.choices, default=TicketStatus.DRAFT
    )
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    pull_request_url = models.URLField(blank=True, max_length=500)
    risk_assessment = models.JSONField(default=dict, blank=True)
    rollback_plan = models.JSONField(default=dict, blank=True)
    # Computed by deployments.policy.risk from the questionnaire and the current plan (audited):
    # {"score", "level", "reasons", "blast_radius", "plan_run"}.
    risk = models.JSONField(default=dict, blank=True, editable=False)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )
    # Rollback tickets only (services/rollbacks.py): the deployment they return the
    # environment to, and how they are governed (fixed when the rollback is opened).
    rollback_target = models.ForeignKey(
        "Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rollback_tickets",
    )
    # Filed by a run trigger (docs/stacks.md): the upstream stack's deployment that planned it.
    triggered_by = models.ForeignKey(
        "Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="triggered_tickets",
    )
    rollback_mode = models.CharField(max_length=12, choices=RollbackMode.choices, blank=True)
    # Immediate rollbacks: the end of their hour (ROLLBACK_IMMEDIATE_MINUTES after the
    # rolled-back deployment finished); past it they follow the planned path (policy).
    rollback_immediate_until = models.DateTimeField(null=True, blank=True)
    current_plan = models.ForeignKey(
        "TerraformRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=32, default="web")
    # Was the commit reachable from INFRA_BRANCH when the worker last checked (a plan's end,
    # an apply's start)? None: not checked. An auto-deploy ticket whose commit is not waits
    # for a lead (policy.needs_branch_approval).
    commit_on_branch = models.BooleanField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Every filter of the lists (pages, API), each in the list's order (docs/performance.md).
        indexes = [
            # Covering the visibility filter (environment or author): a deep page steps over
            # rows in the index alone (PostgreSQL; other databases ignore ``include``).
            models.Index(
                fields=["-created_at", "-id"],
                name="ticket_newest",
                include=["environment", "author"],
            ),
            models.Index(fields=["environment", "-created_at", "-id"], name="ticket_env_newest"),
            models.Index(
                fields=["environment", "status", "-created_at", "-id"], name="ticket_env_status"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="ticket_status_newest"),
            models.Index(fields=["author", "-created_at", "-id"], name="ticket_author_newest"),
            # ?commit= is a prefix: LIKE 'abc%' needs the pattern operator class on PostgreSQL
            # (other databases ignore opclasses).
            models.Index(
                fields=["commit_sha"],
                name="ticket_commit_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
        ]
        constraints = [
            _choices_check("status", TicketStatus, "ticket_status_valid"),
            _choices_check("change_type", ChangeType, "ticket_change_type_valid"),
            models.CheckConstraint(
                condition=Q(commit_sha__regex=r"^[0-9a-f]{40}$"), name="ticket_commit_sha_hex40"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.stack_id is None:
            self.stack = Stack.default()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]
