"""Environments as the API shows them: policy, change window, freezes, drift reports."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from deployments import policy
from deployments.api.shapes.common import (
    ApprovalRuleField,
    ChangeWindowSerializer,
    NameListField,
    PlanSummarySerializer,
    RiskRulesField,
)
from deployments.models import Environment, Freeze
from deployments.selectors.windows import environment_window_state


class FreezeSerializer(serializers.ModelSerializer[Freeze]):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    declared_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Freeze
        fields = [
            "id",
            "environment",
            "starts_at",
            "ends_at",
            "reason",
            "declared_by",
            "created_at",
        ]
        read_only_fields = fields


class EnvironmentSerializer(serializers.ModelSerializer[Environment]):
    approval_rule = ApprovalRuleField(read_only=True)
    emergency_approval_rule = ApprovalRuleField(read_only=True)
    risk_rules = RiskRulesField(read_only=True)
    emergency_escalating_answers = NameListField(
        read_only=True,
        help_text="The answers that escalate an emergency to the high-risk emergency rule.",
    )
    view_groups = NameListField(read_only=True)
    file_groups = NameListField(read_only=True)
    deploy_groups = NameListField(read_only=True)
    required_checks = NameListField(read_only=True)
    approval_rule_text = serializers.SerializerMethodField()
    change_window = serializers.SerializerMethodField()
    next_window_start = serializers.SerializerMethodField()
    in_window_now = serializers.SerializerMethodField()
    current_freezes = serializers.SerializerMethodField()
    upcoming_freezes = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = [
            "name",
            "display_name",
            "purpose",
            "workspace",
            "var_file",
            "approval_rule",
            "approval_rule_text",
            "emergency_approval_rule",
            "risk_rules",
            "emergency_escalating_answers",
            "immediate_rollback_start",
            "auto_deploy",
            "deploy_on_merge",
            "max_concurrent_applies",
            "change_window",
            "next_window_start",
            "in_window_now",
            "current_freezes",
            "upcoming_freezes",
            "monitoring_minutes",
            "drift_check_minutes",
            "view_groups",
            "file_groups",
            "deploy_groups",
            "requires_change_details",
            "requires_staging_evidence",
            "requires_qa_signoff",
            "required_checks",
        ]

    def get_approval_rule_text(self, env: Environment) -> str:
        return policy.describe_rule(env.approval_rule)

    @extend_schema_field(ChangeWindowSerializer(allow_null=True))
    def get_change_window(self, env: Environment) -> dict[str, Any] | None:
        window = policy.Window.of(env)
        if window is None:
            return None
        return {
            "timezone": window.timezone,
            "days": list(window.days),
            "start": window.start.strftime("%H:%M"),
            "end": window.end.strftime("%H:%M"),
            "text": window.describe(),
        }

    def _state(self, env: Environment) -> dict[str, Any]:
        cache = self.context.setdefault("_window_state", {})
        if env.pk not in cache:
            cache[env.pk] = environment_window_state(env, timezone.now())
        return cache[env.pk]

    def get_next_window_start(self, env: Environment) -> str | None:
        start = self._state(env)["next_window_start"]
        return start.isoformat() if start else None

    def get_in_window_now(self, env: Environment) -> bool:
        return bool(self._state(env)["in_window_now"])

    @extend_schema_field(FreezeSerializer(many=True))
    def get_current_freezes(self, env: Environment) -> list[dict[str, Any]]:
        return FreezeSerializer(self._state(env)["current_freezes"], many=True).data  # type: ignore[return-value]

    @extend_schema_field(FreezeSerializer(many=True))
    def get_upcoming_freezes(self, env: Environment) -> list[dict[str, Any]]:
        return FreezeSerializer(self._state(env)["upcoming_freezes"], many=True).data  # type: ignore[return-value]


class DriftCheckSerializer(serializers.Serializer[Any]):
    """One drift report of an environment."""

    id = serializers.IntegerField()
    environment = serializers.CharField(source="environment.name")
    stack = serializers.CharField(source="stack.name", help_text="The stack checked.")
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    commit_sha = serializers.CharField()
    var_file = serializers.CharField()
    status = serializers.CharField()
    drifted = serializers.BooleanField()
    exit_code = serializers.IntegerField(allow_null=True)
    summary = serializers.SerializerMethodField()
    error = serializers.CharField()
    log = serializers.CharField()
    requested_by = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(PlanSummarySerializer)
    def get_summary(self, check: Any) -> dict[str, Any]:
        """{add, change, destroy, resources: [{address, action}, ...]} of the drift."""
        summary = check.summary if isinstance(check.summary, dict) else {}
        return {
            "add": summary.get("add", 0),
            "change": summary.get("change", 0),
            "destroy": summary.get("destroy", 0),
            "resources": list(summary.get("resources") or []),
        }
