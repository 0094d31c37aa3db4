"""GitHub webhook deliveries and the pull requests they told us about."""

from __future__ import annotations

from django.db import models

from ._base import _choices_check
from .tickets import Ticket


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One signed delivery (X-GitHub-Delivery): recorded once, processed once."""

    delivery_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    outcome = models.TextField(blank=True)
    # The parsed body, kept until the worker has acted on it (and for the record).
    payload = models.JSONField(default=dict, blank=True)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [_choices_check("status", DeliveryStatus, "webhook_delivery_status_valid")]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id} ({self.status})"


class PullRequest(models.Model):
    """A pull request of the infrastructure repository, as its last webhook described it."""

    repository = models.CharField(max_length=200)
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=500)
    title = models.CharField(max_length=300)
    author = models.CharField(max_length=100)
    head_sha = models.CharField(max_length=40, db_index=True)
    # The commit a merge put on the base branch (a merge, squash or rebase commit): what the
    # push to main then deploys. Known once GitHub reports the pull request merged.
    merge_commit_sha = models.CharField(max_length=40, blank=True, db_index=True)
    state = models.CharField(max_length=16, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "number"], name="pull_request_unique")
        ]

    def __str__(self) -> str:
        return f"{self.repository}#{self.number}"

    @classmethod
    def for_commit(cls, sha: str) -> PullRequest | None:
        """The pull request a commit belongs to: its head commit, or the commit its merge
        put on the base branch (the latest described when several match)."""
        if not sha:
            return None
        return cls.objects.filter(models.Q(head_sha=sha) | models.Q(merge_commit_sha=sha)).first()
