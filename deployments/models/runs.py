"""Terraform runs and their streamed log."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.choices import ACTIVE_RUN_STATUSES, RunKind, RunStatus
from deployments.lib.storage import plan_storage
from deployments.models._base import _choices_check
from deployments.models.environments import Environment
from deployments.models.stacks import Stack
from deployments.models.tickets import Ticket


def plan_upload_to(run: TerraformRun, filename: str) -> str:
    return f"plans/ticket-{run.ticket_id}/run-{run.pk}.tfplan"


class TerraformRun(models.Model):
    """One Terraform execution (plan, apply or post-apply check) for a ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="runs")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="runs")
    # The ticket's stack (copied on save, like the environment): the lock is per stack and env.
    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="runs")
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
    # Holds secrets in clear: a private storage, never served (see deployments.lib.storage).
    plan_file = models.FileField(
        upload_to=plan_upload_to, storage=plan_storage, blank=True, max_length=255
    )
    plan_sha256 = models.CharField(max_length=64, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    has_changes = models.BooleanField(null=True)
    # For plans: "lineage/serial" of the state planned against; applies refuse any other.
    base_state = models.CharField(max_length=100, blank=True)
    terraform_version = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    dispatch_count = models.PositiveSmallIntegerField(default=0)
    # For applies: the environment's fencing token this run claimed; its worker's writes
    # are conditioned on it (0 for plans and checks, which are fenced by status alone).
    fence = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The reconciler's scans (services.runs.reconcile): small partial indexes over
        # the few active runs, never the whole history.
        indexes = [
            models.Index(
                fields=["status", "heartbeat_at"],
                condition=Q(status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES)),
                name="run_active_heartbeat",
            ),
            models.Index(
                fields=["status", "kind", "created_at"],
                condition=Q(status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES)),
                name="run_active_kind",
            ),
            models.Index(fields=["ticket", "-created_at", "-id"], name="run_ticket_newest"),
        ]
        constraints = [
            _choices_check("kind", RunKind, "run_kind_valid"),
            _choices_check("status", RunStatus, "run_status_valid"),
            # Invariant 3: at most one apply at a time per stack and environment (and at most
            # Environment.max_concurrent_applies across its stacks: services.runs.start).
            models.UniqueConstraint(
                fields=["stack", "environment"],
                condition=Q(
                    kind=RunKind.APPLY, status__in=sorted(s.value for s in ACTIVE_RUN_STATUSES)
                ),
                name="one_active_apply_per_stack_environment",
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

    def save(self, *args: object, **kwargs: object) -> None:
        if self.stack_id is None:
            self.stack_id = self.ticket.stack_id
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def duration(self) -> dt.timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


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
