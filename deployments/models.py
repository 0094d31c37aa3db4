"""Domain models: environments and their policy, tickets, Terraform runs, audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from .choices import (
    ACTIVE_RUN_STATUSES,
    ChangeType,
    Role,
    RunKind,
    RunStatus,
    TicketStatus,
)


def _choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": [c.value for c in choices]}), name=name
    )


class Environment(models.Model):
    """A deployment target (workspace + var-file) and the policy that guards it."""

    name = models.SlugField(max_length=32, unique=True)
    display_name = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    purpose = models.CharField(max_length=200, blank=True)
    workspace = models.CharField(max_length=64)
    var_file = models.CharField(max_length=255)
    # {"all_of": [role, ...]} or {"any_of": [role, ...], "count": n}; {} means none.
    approval_rule = models.JSONField(default=dict, blank=True)
    emergency_approval_rule = models.JSONField(default=dict, blank=True)
    auto_deploy = models.BooleanField(
        default=False, help_text="Apply without approval as soon as the plan succeeds."
    )
    deploy_on_merge = models.BooleanField(
        default=False, help_text="A push to the main branch files a ticket here."
    )
    window_timezone = models.CharField(max_length=64, default="America/New_York")
    # ISO weekdays, 1 = Monday … 7 = Sunday.
    window_days = models.JSONField(default=list, blank=True)
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    monitoring_minutes = models.PositiveIntegerField(default=0)
    view_groups = models.JSONField(default=list, blank=True)
    file_groups = models.JSONField(default=list, blank=True)
    deploy_groups = models.JSONField(default=list, blank=True)
    requires_change_details = models.BooleanField(
        default=False, help_text="Tickets need a risk assessment and a rollback plan."
    )
    requires_staging_evidence = models.BooleanField(default=False)
    requires_qa_signoff = models.BooleanField(default=False)
    step_up_auth = models.BooleanField(
        default=False,
        help_text="Ask for the password again (within a few minutes) before approving or "
        "deploying in the browser.",
    )

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(window_start__isnull=True) & Q(window_end__isnull=True))
                | (Q(window_start__isnull=False) & Q(window_end__isnull=False)),
                name="environment_window_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_window(self) -> bool:
        return self.window_start is not None


class Ticket(models.Model):
    """A request to deploy one commit of the infrastructure repository to one environment."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="tickets")
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
    scheduled_for = models.DateTimeField(null=True, blank=True)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )
    current_plan = models.ForeignKey(
        "TerraformRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=32, default="web")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["environment", "status"])]
        constraints = [
            _choices_check("status", TicketStatus, "ticket_status_valid"),
            _choices_check("change_type", ChangeType, "ticket_change_type_valid"),
            models.CheckConstraint(
                condition=Q(commit_sha__regex=r"^[0-9a-f]{40}$"), name="ticket_commit_sha_hex40"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]


def plan_upload_to(run: TerraformRun, filename: str) -> str:
    return f"plans/ticket-{run.ticket_id}/run-{run.pk}.tfplan"


class TerraformRun(models.Model):
    """One Terraform execution (plan, apply or post-apply check) for a ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="runs")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=8, choices=RunKind.choices)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # For apply and check runs: the plan they carry out or verify.
    plan = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followers"
    )
    commit_sha = models.CharField(max_length=40)
    workspace = models.CharField(max_length=64)
    var_file = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exit_code = models.IntegerField(null=True, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    plan_file = models.FileField(upload_to=plan_upload_to, blank=True, max_length=255)
    plan_sha256 = models.CharField(max_length=64, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    has_changes = models.BooleanField(null=True)
    # For plans: "lineage/serial" of the state planned against; applies refuse any other.
    base_state = models.CharField(max_length=100, blank=True)
    terraform_version = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    dispatch_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            _choices_check("kind", RunKind, "run_kind_valid"),
            _choices_check("status", RunStatus, "run_status_valid"),
            # Invariant 3: at most one apply at a time per environment.
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(
                    kind=RunKind.APPLY, status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES)
                ),
                name="one_active_apply_per_environment",
            ),
            models.UniqueConstraint(
                fields=["ticket"],
                condition=Q(status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES)),
                name="one_active_run_per_ticket",
            ),
            models.CheckConstraint(
                condition=Q(kind=RunKind.PLAN) | Q(plan__isnull=False),
                name="run_apply_and_check_name_their_plan",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} of ticket {self.ticket_id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


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
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
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


class RunLogChunk(models.Model):
    """A piece of a run's output, written while it runs so pages can stream it."""

    run = models.ForeignKey(TerraformRun, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    start = models.PositiveBigIntegerField(help_text="Character offset of this chunk in the log.")
    text = models.TextField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="log_chunk_unique_seq")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of run {self.run_id}"


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
