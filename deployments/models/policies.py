"""Policy as code: Rego policies over each plan (docs/policies.md).

A plan run's :class:`PolicyCheck` keeps what its policies read (the masked plan document,
the commit's policy folder) and its :class:`PolicyResult` rows what they decided; a
:class:`PolicyOverride` lets a soft failure through for exactly one plan (its SHA-256);
:class:`PortalPolicy` is a policy kept in the portal (admin), each save a
:class:`PortalPolicyVersion`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from deployments.lib.storage import plan_storage
from deployments.models._base import _choices_check
from deployments.models.runs import TerraformRun
from deployments.models.tickets import Ticket


class PolicyLevel(models.TextChoices):
    ADVISORY = "advisory", "Advisory"
    SOFT = "soft", "Soft mandatory"
    HARD = "hard", "Hard mandatory"


class PolicySource(models.TextChoices):
    REPO = "repo", "Repository"
    PORTAL = "portal", "Portal"


class PolicyOutcome(models.TextChoices):
    PASS = "pass", "Passed"
    WARN = "warn", "Warnings"
    FAIL = "fail", "Failed"
    ERROR = "error", "Error"


class PolicyStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    WARNINGS = "warnings", "Warnings"
    OVERRIDE_NEEDED = "override_needed", "Override needed"
    BLOCKED = "blocked", "Blocked"


def policy_document_upload_to(check: PolicyCheck, filename: str) -> str:
    return f"policy-input/ticket-{check.run.ticket_id}/run-{check.run_id}.json"


class PolicyCheck(models.Model):
    """The policy evaluation of one plan run: its input and its verdict."""

    run = models.OneToOneField(TerraformRun, on_delete=models.PROTECT, related_name="policy_check")
    # `terraform show -json` of the saved plan with its sensitive values masked (private
    # storage, like the plan file): what the policies read as input.plan.
    document = models.FileField(
        upload_to=policy_document_upload_to, storage=plan_storage, blank=True, max_length=255
    )
    document_sha256 = models.CharField(max_length=64, blank=True)
    # The commit's policy folder (the environment's policy_dir, as it was at the plan):
    # [[path, text], ...] and its manifest.
    repo_dir = models.CharField(max_length=255, blank=True)
    repo_files = models.JSONField(default=list, blank=True)
    repo_manifest = models.JSONField(default=dict, blank=True)
    # The stack's own policy folder (Stack.policy_dir at the plan; "" for none), likewise.
    stack_dir = models.CharField(max_length=255, blank=True)
    stack_files = models.JSONField(default=list, blank=True)
    stack_manifest = models.JSONField(default=dict, blank=True)
    # Why the plan document or a policy folder could not be read (policies fail closed).
    input_error = models.TextField(blank=True)
    folder_error = models.TextField(blank=True)
    stack_folder_error = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=PolicyStatus.choices, blank=True)
    seconds = models.FloatField(default=0)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"policy check of run {self.run_id}: {self.status or 'not evaluated'}"


class PolicyResult(models.Model):
    """What one policy decided about one plan."""

    run = models.ForeignKey(TerraformRun, on_delete=models.CASCADE, related_name="policy_results")
    policy = models.CharField(
        max_length=200,
        help_text="The Rego package; a stack's own policy is named by its folder too "
        "(stacks/app/policies/app_layer).",
    )
    path = models.CharField(max_length=300, blank=True)
    # The repository folder the policy came from ("" for a portal policy).
    folder = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=8, choices=PolicySource.choices)
    version_sha256 = models.CharField(max_length=64, blank=True)
    level = models.CharField(max_length=8, choices=PolicyLevel.choices)
    outcome = models.CharField(max_length=8, choices=PolicyOutcome.choices)
    messages = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    override_role = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            _choices_check("level", PolicyLevel, "policyresult_level_valid"),
            _choices_check("outcome", PolicyOutcome, "policyresult_outcome_valid"),
            _choices_check("source", PolicySource, "policyresult_source_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} ({self.source}): {self.outcome}"

    @property
    def where(self) -> str:
        """Where the policy came from, for people: its file with its folder, or the portal
        policy's version."""
        if self.folder and not self.path.startswith(f"{self.folder}/"):
            return f"{self.folder}/{self.path}"
        return self.path


class PolicyOverride(models.Model):
    """A soft failure let through, for one plan only, by the role the policy names."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="policy_overrides")
    plan_run = models.ForeignKey(TerraformRun, on_delete=models.PROTECT, related_name="+")
    plan_sha256 = models.CharField(max_length=64)
    policy = models.CharField(max_length=200)
    role = models.CharField(max_length=32)
    reason = models.TextField()
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_run", "policy"], name="policy_override_once_per_plan"
            )
        ]

    def __str__(self) -> str:
        return f"override of {self.policy} on ticket {self.ticket_id}"


class PortalPolicy(models.Model):
    """A Rego policy kept in the portal (edited in the admin; each save is a version)."""

    name = models.CharField(
        max_length=200,
        unique=True,
        help_text="The Rego package it declares (e.g. portal.tags); a repository policy of "
        "the same package is evaluated at least at this level.",
    )
    description = models.CharField(max_length=300, blank=True)
    source = models.TextField(help_text="Rego v1; its deny and warn sets are read.")
    level = models.CharField(max_length=8, choices=PolicyLevel.choices, default=PolicyLevel.HARD)
    environments = models.JSONField(
        default=list, blank=True, help_text='Environment names; empty or ["*"] for every one.'
    )
    override_role = models.CharField(
        max_length=32,
        blank=True,
        help_text="Who may override a soft failure (default DevOps Lead).",
    )
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    sha256 = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "portal policy"
        verbose_name_plural = "portal policies"
        constraints = [_choices_check("level", PolicyLevel, "portalpolicy_level_valid")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class PortalPolicyVersion(models.Model):
    """One saved version of a portal policy, as results name it (its SHA-256)."""

    policy = models.ForeignKey(PortalPolicy, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    level = models.CharField(max_length=8, choices=PolicyLevel.choices)
    environments = models.JSONField(default=list, blank=True)
    override_role = models.CharField(max_length=32, blank=True)
    enabled = models.BooleanField(default=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "version"], name="portal_policy_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.version}"
