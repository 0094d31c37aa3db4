"""Input and output shapes of the v1 API."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments import policy, selectors, services, validation
from deployments.choices import ChangeType
from deployments.evidence_selectors import evidence_for
from deployments.models import Approval, Environment, TerraformRun, Ticket

from .evidence import EvidenceSerializer, StagingTicketSerializer, staging_ticket_data


class EnvironmentSerializer(serializers.ModelSerializer[Environment]):
    approval_rule_text = serializers.SerializerMethodField()
    change_window = serializers.SerializerMethodField()
    next_window_start = serializers.SerializerMethodField()
    in_window_now = serializers.SerializerMethodField()

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
            "auto_deploy",
            "deploy_on_merge",
            "change_window",
            "next_window_start",
            "in_window_now",
            "monitoring_minutes",
            "view_groups",
            "file_groups",
            "deploy_groups",
            "requires_change_details",
            "requires_staging_evidence",
            "requires_qa_signoff",
        ]

    def get_approval_rule_text(self, env: Environment) -> str:
        return policy.describe_rule(env.approval_rule)

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

    def get_next_window_start(self, env: Environment) -> str | None:
        start = policy.next_window_start(env, timezone.now())
        return start.isoformat() if start else None

    def get_in_window_now(self, env: Environment) -> bool:
        return policy.in_window(env, timezone.now())


def _summary(run: TerraformRun | None) -> dict[str, Any] | None:
    if run is None or not run.summary:
        return None
    return {
        "add": run.summary.get("add", 0),
        "change": run.summary.get("change", 0),
        "destroy": run.summary.get("destroy", 0),
        "resources": run.summary.get("resources", []),
    }


class RunBriefSerializer(serializers.ModelSerializer[TerraformRun]):
    summary = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = TerraformRun
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "exit_code",
            "error",
            "plan",
            "plan_sha256",
            "summary",
            "has_changes",
            "commit_sha",
            "workspace",
            "var_file",
            "terraform_version",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_summary(self, run: TerraformRun) -> dict[str, Any] | None:
        return _summary(run)

    def get_url(self, run: TerraformRun) -> str:
        return reverse("api:run-detail", args=[run.pk])


class RunSerializer(RunBriefSerializer):
    ticket: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    log = serializers.SerializerMethodField()

    class Meta(RunBriefSerializer.Meta):
        fields = [*RunBriefSerializer.Meta.fields, "ticket", "log"]

    def get_log(self, run: TerraformRun) -> str:
        return selectors.run_log_text(run)


class TicketSerializer(serializers.ModelSerializer[Ticket]):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    author: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    url = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()
    current_plan = RunBriefSerializer(read_only=True, allow_null=True)
    plan_summary = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "url",
            "web_url",
            "title",
            "description",
            "environment",
            "commit_sha",
            "change_type",
            "author",
            "status",
            "status_reason",
            "pull_request_url",
            "risk_assessment",
            "rollback_plan",
            "scheduled_for",
            "rollback_of",
            "source",
            "current_plan",
            "plan_summary",
            "created_at",
            "updated_at",
            "status_changed_at",
            "deployed_at",
            "completed_at",
        ]

    def get_url(self, ticket: Ticket) -> str:
        return reverse("api:ticket-detail", args=[ticket.pk])

    def get_web_url(self, ticket: Ticket) -> str:
        return reverse("ticket_detail", args=[ticket.pk])

    def get_plan_summary(self, ticket: Ticket) -> dict[str, Any] | None:
        return _summary(ticket.current_plan)


class TicketDetailSerializer(TicketSerializer):
    runs = RunBriefSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()
    approval_status = serializers.SerializerMethodField()
    rejections = serializers.SerializerMethodField()
    checklist = serializers.SerializerMethodField()
    follow_ups = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    staging_ticket = serializers.SerializerMethodField()

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "runs",
            "approvals",
            "approval_status",
            "rejections",
            "checklist",
            "follow_ups",
            "evidence",
            "staging_ticket",
        ]

    def get_approvals(self, ticket: Ticket) -> list[dict[str, Any]]:
        return ApprovalSerializer(ticket.approvals.select_related("approver"), many=True).data  # type: ignore[return-value]

    def get_approval_status(self, ticket: Ticket) -> dict[str, Any]:
        return services.approval_summary(ticket)

    def get_rejections(self, ticket: Ticket) -> list[dict[str, Any]]:
        return [
            {
                "rejected_by": r.rejected_by.get_username(),
                "reason": r.reason,
                "plan_run": r.plan_run_id,
                "created_at": r.created_at.isoformat(),
            }
            for r in ticket.rejections.select_related("rejected_by")
        ]

    def get_checklist(self, ticket: Ticket) -> list[dict[str, Any]]:
        return []

    def get_follow_ups(self, ticket: Ticket) -> list[dict[str, Any]]:
        return []

    @extend_schema_field(EvidenceSerializer(many=True))
    def get_evidence(self, ticket: Ticket) -> list[dict[str, Any]]:
        return EvidenceSerializer(evidence_for(ticket), many=True).data  # type: ignore[return-value]

    @extend_schema_field(StagingTicketSerializer(allow_null=True))
    def get_staging_ticket(self, ticket: Ticket) -> dict[str, Any] | None:
        return staging_ticket_data(ticket)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "maxProperties": validation.FIELD_JSON_MAX_KEYS,
        "description": (
            f"A JSON object: at most {validation.FIELD_JSON_MAX_KEYS} keys, nested at most "
            f"{validation.FIELD_JSON_MAX_DEPTH} deep, {validation.FIELD_JSON_MAX_CHARS} "
            "characters as JSON."
        ),
    }
)
class BoundedJSONObjectField(serializers.Field):
    """A small JSON object, bounded in keys, depth and size (see deployments.validation)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return validation.clean_json_object(data, self.field_name or "value")
        except services.InputError as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value: Any) -> Any:
        return value


# What DRF's CharField refuses (NUL characters; text that is only whitespace where a
# value is required), stated as patterns so the schema tells clients before they try.
# DRF skips validators for "" where blank is allowed; "+" keeps the schema's oneOf
# (pattern | empty) exclusive.
_NO_NUL = RegexValidator(r"^[^\x00]+$", "must not contain NUL characters")
_NOT_BLANK = RegexValidator(
    r"^[^\x00]*[^\x00\s][^\x00]*$", "must contain a visible character and no NUL"
)
_HEX40 = r"^[0-9a-fA-F]{40}$"
_HEX64 = r"^[0-9a-fA-F]{64}$"


class TicketCreateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(
        min_length=1, max_length=validation.TITLE_MAX, validators=[_NOT_BLANK]
    )
    environment = serializers.CharField(
        min_length=1,
        max_length=32,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", "an environment name")],
        help_text="An environment name: dev, staging or prod.",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=validation.DESCRIPTION_MAX,
        validators=[_NO_NUL],
    )
    commit_sha = serializers.RegexField(
        _HEX40,
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "commit_sha must be a full 40-character hex SHA"},
        help_text="40-hex commit of the infrastructure repository; omitted: the tip of main.",
    )
    change_type = serializers.ChoiceField(choices=ChangeType.choices, default=ChangeType.NORMAL)
    pull_request_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=validation.URL_MAX
    )
    risk_assessment = BoundedJSONObjectField(required=False, default=dict)
    rollback_plan = BoundedJSONObjectField(required=False, default=dict)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True, default=None)


class CommentSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=validation.COMMENT_MAX,
        validators=[_NO_NUL],
    )


class PlanSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        validators=[_NO_NUL],
        help_text=(
            "Why the ticket is planned again. Required (400 without it) when the new plan "
            "would void standing approvals; recorded on them and in the audit trail."
        ),
    )


class ApproveSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=validation.COMMENT_MAX,
        validators=[_NO_NUL],
    )
    plan_sha256 = serializers.RegexField(
        _HEX64,
        max_length=64,
        help_text=(
            "Required: the SHA-256 of the plan you reviewed (the ticket's "
            "current_plan.plan_sha256). 409 when a newer plan replaced it or there is no plan."
        ),
        error_messages={
            "invalid": "plan_sha256 must be the 64-hex SHA-256 of the plan you reviewed",
            "required": "name the plan you reviewed: plan_sha256 is required",
            "blank": "name the plan you reviewed: plan_sha256 is required",
        },
    )


class RejectSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        min_length=1, max_length=validation.COMMENT_MAX, validators=[_NOT_BLANK]
    )


class ApprovalSerializer(serializers.ModelSerializer[Approval]):
    approver: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    void = serializers.BooleanField(source="is_void", read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "approver",
            "role",
            "held_roles",
            "plan_run",
            "plan_sha256",
            "comment",
            "created_at",
            "void",
            "voided_at",
            "void_reason",
        ]
