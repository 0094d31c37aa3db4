"""Environments and the policy that guards them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from deployments.policy.incidents import DEFAULT_ESCALATING_ANSWERS, ROLLBACK_START_CHOICES


def default_freeze_groups() -> list[str]:
    """Who may declare, change and lift freezes of a new environment (policy.freeze_roles):
    the roles that answer for production."""
    return ["tech_lead", "devops_lead", "operations"]


def default_escalating_answers() -> list[str]:
    """What escalates an emergency of a new environment (policy.incidents)."""
    return list(DEFAULT_ESCALATING_ANSWERS)


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
    # Probed during the monitoring period (docs/monitoring.md): CloudWatch alarms by name
    # and/or name prefix, and health-check URLs [{"url", "max_latency_ms"?}] (merged with
    # HEALTH_CHECK_URLS).
    alarm_names = models.JSONField(default=list, blank=True)
    alarm_name_prefix = models.CharField(max_length=255, blank=True)
    health_checks = models.JSONField(default=list, blank=True)
    # The post-deployment checklist: [{"key", "label", "auto"?: a health-check URL}].
    checklist = models.JSONField(default=list, blank=True)
    view_groups = models.JSONField(default=list, blank=True)
    file_groups = models.JSONField(default=list, blank=True)
    deploy_groups = models.JSONField(default=list, blank=True)
    # Who may declare, change and lift a freeze of this environment (policy.freeze_roles).
    freeze_groups = models.JSONField(default=default_freeze_groups, blank=True)
    requires_change_details = models.BooleanField(
        default=False, help_text="Tickets need a risk assessment and a rollback plan."
    )
    # Approval rules by risk level, replacing the base ones for tickets of that level:
    # {"high": {"approval_rule": {...}, "emergency_approval_rule": {...}}} (policy.risk_rule).
    risk_rules = models.JSONField(default=dict, blank=True)
    # Resources that hold data beyond deployments.policy.data_resources' table, for the risk
    # score's data-loss floor: [{"type": "...", "why": "..."} or {"address": "...", "why"}].
    data_resource_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Resources that hold data, besides the built-in AWS table: a list of "
        '{"type": "<resource type>", "why": "..."} or {"address": "<resource address>", '
        '"why": "..."}. Deleting or replacing one is high risk; forgetting one, medium.',
    )
    requires_staging_evidence = models.BooleanField(default=False)
    requires_qa_signoff = models.BooleanField(default=False)
    step_up_auth = models.BooleanField(
        default=False,
        help_text="Ask for the password again (within a few minutes) before approving or "
        "deploying in the browser.",
    )
    # Names of CI checks whose latest report must have passed before anyone may approve.
    required_checks = models.JSONField(default=list, blank=True)
    # Minutes between drift checks (plan -detailed-exitcode of the last deployed commit); 0: off.
    drift_check_minutes = models.PositiveIntegerField(default=0)
    # Credentials per phase (docs/workers.md): the name of a credential set in the workers'
    # TERRAFORM_CREDENTIALS_FILE and/or an AWS role assumed through STS for each run. Plans
    # (and post-apply checks, drift checks, speculative plans) get the plan ones, read-only;
    # only applies get the apply ones. The values themselves never enter the database.
    plan_credentials = models.CharField(
        max_length=64,
        blank=True,
        help_text="Credential set (a key of the workers' TERRAFORM_CREDENTIALS_FILE) that "
        "plans get: read-only.",
    )
    apply_credentials = models.CharField(
        max_length=64, blank=True, help_text="Credential set that applies get."
    )
    plan_role_arn = models.CharField(
        max_length=2048,
        blank=True,
        help_text="AWS role the worker assumes for each plan (read-only), e.g. "
        "arn:aws:iam::123456789012:role/prod-plan.",
    )
    apply_role_arn = models.CharField(
        max_length=2048, blank=True, help_text="AWS role the worker assumes for each apply."
    )
    # Verified providers (docs/security.md): a stack without .terraform.lock.hcl is refused
    # here; providers come from the portal's read-only mirror unless network installation
    # is allowed (then Terraform may download what the mirror lacks).
    require_lock_file = models.BooleanField(
        default=False,
        help_text="Refuse to run Terraform for a commit whose stack has no "
        ".terraform.lock.hcl (providers are then checked against its checksums).",
    )
    allow_provider_network = models.BooleanField(
        default=False,
        help_text="Let Terraform install providers the mirror lacks from their registries.",
    )
    # How many stacks may apply here at once (docs/stacks.md): 1 (the default) is one apply
    # at a time in the environment, whatever its stack; 0 is no limit across stacks. Each
    # stack always applies one at a time per environment.
    max_concurrent_applies = models.PositiveSmallIntegerField(
        default=1,
        help_text="Applies of different stacks that may run here at once (0: no limit); a "
        "stack always applies one at a time.",
    )
    policy_dir = models.CharField(
        max_length=255,
        default="policies",
        blank=True,
        help_text="The commit's folder of Rego policies (repository-relative; empty: none).",
    )
    # Incident paths (deployments.policy.incidents, docs/incidents.md).
    immediate_rollback_start = models.CharField(
        max_length=16,
        choices=ROLLBACK_START_CHOICES,
        default="operations",
        help_text="Who starts an approved immediate rollback: the deployers (operations), "
        "also the approving lead (approver), or nobody: it starts when approved (on_approval).",
    )
    emergency_escalating_answers = models.JSONField(
        default=default_escalating_answers,
        blank=True,
        help_text="Answers that escalate an emergency to the high-risk emergency rule: any of "
        "data_migration, downtime_expected, customer_facing, not_tested_in_staging, "
        "high_impact_and_likelihood, destroys_data.",
    )
    # Fencing token: incremented by every apply claim; the claiming run keeps its value.
    apply_fence = models.PositiveBigIntegerField(default=0, editable=False)

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
