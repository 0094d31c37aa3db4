"""GitHub webhook deliveries, the pull requests they told us about, and the GitHub logins
of portal users."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

from deployments.models._base import _choices_check
from deployments.models.tickets import Ticket


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"
    # Signed, but not a delivery the portal can read (over the size limit, not JSON, not
    # application/json, headers missing): answered 4xx, kept with the reason.
    REFUSED = "refused", "Refused"


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


# GitHub's rule for usernames: letters, digits and single hyphens inside, at most 39.
GITHUB_LOGIN_RE = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"


class GitHubLogin(models.Model):
    """The GitHub account of a portal user, linked by an administrator: the only way a push
    is filed as that user (a GitHub name that merely equals a username maps to no one)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="github_login"
    )
    login = models.CharField(
        max_length=39,
        validators=[RegexValidator(GITHUB_LOGIN_RE, "a GitHub username: letters, digits, -")],
        help_text="Their GitHub username (sender.login of their pushes); case is ignored.",
    )
    linked_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "GitHub login"
        constraints = [
            # GitHub logins are case-insensitive: one portal user per GitHub account.
            models.UniqueConstraint(Lower("login"), name="github_login_unique_ignoring_case")
        ]

    def __str__(self) -> str:
        return f"{self.login} → {self.user}"
