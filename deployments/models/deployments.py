"""The environment's deployment history: one record per apply that ran Terraform."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from deployments.models._base import _choices_check
from deployments.models.environments import Environment
from deployments.models.runs import TerraformRun
from deployments.models.stacks import Stack
from deployments.models.tickets import Ticket


class DeploymentOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Deployment(models.Model):
    """What one apply did to one environment: the commit, var-file and plan it applied,
    the state it left, and what became of it afterwards (monitoring, rollback).

    Written by the worker in the transaction that records the apply's outcome. "Last known
    good" (what a rollback returns to) is the newest succeeded deployment of the
    environment that was neither rolled back nor failed its monitoring.
    """

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    # The stack deployed (the ticket's; copied on save): history is per stack and environment.
    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="deployments")
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="deployments")
    run = models.OneToOneField(TerraformRun, on_delete=models.PROTECT, related_name="deployment")
    change_type = models.CharField(max_length=16)
    commit_sha = models.CharField(max_length=40)
    var_file = models.CharField(max_length=255)
    # SHA-256 of the var-file's bytes at that commit ("" when unknown, e.g. backfilled).
    var_file_sha256 = models.CharField(max_length=64, blank=True)
    plan_sha256 = models.CharField(max_length=64, blank=True)
    # "lineage/serial" of the workspace's state after the apply ("" when unknown).
    state_after = models.CharField(max_length=100, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(max_length=12, choices=DeploymentOutcome.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()
    # Set when an alarm or a failing health check ended its monitoring period badly.
    monitoring_failed_at = models.DateTimeField(null=True, blank=True)
    monitoring_failure = models.TextField(blank=True)
    # Set when a rollback deployment returned the environment to an earlier one.
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rolled_back"
    )

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-finished_at"], name="deployment_env_time"),
            models.Index(
                fields=["stack", "environment", "-finished_at"], name="deployment_stack_env_time"
            ),
            models.Index(fields=["ticket", "-finished_at"], name="deployment_ticket_time"),
        ]
        constraints = [
            _choices_check("outcome", DeploymentOutcome, "deployment_outcome_valid"),
            models.CheckConstraint(
                condition=Q(rolled_back_at__isnull=True) | Q(outcome="succeeded"),
                name="deployment_only_succeeded_rolled_back",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment} @ {self.commit_sha[:10]} (ticket #{self.ticket_id})"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.stack_id is None:
            self.stack_id = self.ticket.stack_id
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_good(self) -> bool:
        """A rollback could return here."""
        return (
            self.outcome == DeploymentOutcome.SUCCEEDED
            and self.rolled_back_at is None
            and self.monitoring_failed_at is None
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
