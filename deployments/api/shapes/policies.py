"""Rego policy results, overrides and dry runs as the API shows them (docs/policies.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.models import PolicyOverride, PolicyResult, TerraformRun
from deployments.selectors import policies as policy_selectors

POLICY_STATUSES = ["passed", "warnings", "override_needed", "blocked"]


class PolicyResultSerializer(serializers.ModelSerializer[PolicyResult]):
    """What one policy decided about one plan. ``level`` is the one enforced (a repository
    policy never below the portal policy of its package; an error is hard). ``folder``: the
    repository folder it came from (the environment's policy folder or the stack's own;
    empty for a portal policy); a stack's own policy is named ``<folder>/<package>``."""

    messages = serializers.ListField(child=serializers.CharField(), help_text="Its deny set.")
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Its warn set.")

    class Meta:
        model = PolicyResult
        fields = [
            "policy",
            "path",
            "folder",
            "source",
            "version_sha256",
            "level",
            "outcome",
            "messages",
            "warnings",
            "override_role",
        ]


class PolicyOverrideSerializer(serializers.ModelSerializer[PolicyOverride]):
    overridden_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = PolicyOverride
        fields = [
            "id",
            "ticket",
            "plan_run",
            "plan_sha256",
            "policy",
            "role",
            "reason",
            "overridden_by",
            "created_at",
        ]


class OverrideNeedSerializer(serializers.Serializer[Any]):
    policy = serializers.CharField()
    role = serializers.CharField()
    role_label = serializers.CharField()


class TicketPoliciesSerializer(serializers.Serializer[Any]):
    """The current plan's policies: the verdict, each result (failed first), the overrides
    that count for this plan and the soft failures still waiting for one."""

    status = serializers.ChoiceField(choices=POLICY_STATUSES, allow_null=True)
    plan_run = serializers.IntegerField(allow_null=True)
    evaluated_at = serializers.DateTimeField(allow_null=True)
    results = PolicyResultSerializer(many=True)
    overrides = PolicyOverrideSerializer(many=True)
    override_needs = OverrideNeedSerializer(many=True)


def ticket_policies_out(panel: policy_selectors.PolicyPanel) -> dict[str, Any]:
    return {
        "status": panel.status,
        "plan_run": panel.run.pk if panel.run is not None else None,
        "evaluated_at": panel.evaluated_at,
        "results": [row.result for row in panel.rows],
        "overrides": [row.override for row in panel.rows if row.override is not None],
        "override_needs": list(panel.needs),
    }


def run_policy_status(run: TerraformRun) -> str | None:
    return policy_selectors.policy_status_of(run) if run.kind == "plan" else None


def run_policy_results(run: TerraformRun) -> list[dict[str, Any]]:
    return PolicyResultSerializer(policy_selectors.results_of(run), many=True).data  # type: ignore[return-value]


run_policy_status_schema = extend_schema_field(
    serializers.ChoiceField(
        choices=POLICY_STATUSES,
        allow_null=True,
        help_text="Plans: what their policies decide (null: not evaluated, or not a plan).",
    )
)
run_policy_results_schema = extend_schema_field(PolicyResultSerializer(many=True))


class EvaluatedSerializer(serializers.Serializer[Any]):
    policy = serializers.CharField()
    path = serializers.CharField()
    folder = serializers.CharField(help_text="The repository folder; empty: a portal policy.")
    source = serializers.CharField()  # type: ignore[assignment]
    version_sha256 = serializers.CharField()
    level = serializers.CharField()
    outcome = serializers.CharField()
    messages = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())


class DryRunSerializer(serializers.Serializer[Any]):
    """A dry run: the policies evaluated again on a stored plan; nothing recorded."""

    plan_run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=POLICY_STATUSES, allow_null=True)
    seconds = serializers.FloatField()
    results = EvaluatedSerializer(many=True)
