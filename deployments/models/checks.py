"""CI check results reported on tickets (fmt, validate, security_scan, plan, ...)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from deployments.models._base import _choices_check
from deployments.models.tickets import Ticket


class CheckStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class CheckResult(models.Model):
    """One report of one named check; a later report of the same name supersedes it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="checks")
    name = models.SlugField(max_length=64)
    status = models.CharField(max_length=8, choices=CheckStatus.choices)
    summary = models.TextField(blank=True)
    url = models.URLField(blank=True, max_length=500)
    log = models.TextField(blank=True)  # redacted before it is stored
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["ticket", "name"])]
        constraints = [_choices_check("status", CheckStatus, "check_result_status_valid")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"
