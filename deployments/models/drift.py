"""Drift reports: does the environment still match what was last deployed to it?"""

from __future__ import annotations

from django.db import models

from deployments.choices import DriftStatus
from deployments.models._base import _choices_check
from deployments.models.deployments import Deployment
from deployments.models.environments import Environment
from deployments.models.stacks import Stack


class DriftCheck(models.Model):
    """One `terraform plan -detailed-exitcode` of an environment's last deployed commit and
    var-file: exit 0 no drift, 2 drift (the plan's summary says what changed), 1 failure."""

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="drift_checks"
    )
    # The stack checked: drift is per stack and environment (unset on save: Stack.default()).
    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="drift_checks")
    # The deployment whose commit and var-file were planned (None: nothing deployed yet).
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.PROTECT, related_name="drift_checks"
    )
    commit_sha = models.CharField(max_length=40, blank=True)
    var_file = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=12, choices=DriftStatus.choices, default=DriftStatus.RUNNING
    )
    exit_code = models.IntegerField(null=True, blank=True)
    # {"add", "change", "destroy", "resources": [{"address", "action"}, ...]} (as plan summaries).
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)  # redacted by the runner, like every run's log
    requested_by = models.CharField(max_length=150, blank=True)  # "beat" or a username
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["environment", "-started_at"], name="drift_env_time")]
        constraints = [_choices_check("status", DriftStatus, "driftcheck_status_valid")]

    def __str__(self) -> str:
        return f"drift check of {self.environment} ({self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.stack_id is None:
            self.stack = Stack.default()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def drifted(self) -> bool:
        return self.status == DriftStatus.DRIFTED
