"""Input and output shapes of the v1 API."""

from __future__ import annotations

import functools
from typing import Any

from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments import policy, risk, selectors, services, validation
from deployments.choices import ChangeType
from deployments.evidence_selectors import evidence_for
from deployments.models import Approval, Environment, Freeze, PullRequest, TerraformRun, Ticket
from deployments.monitoring_selectors import Monitoring, monitoring_for
from deployments.selectors_windows import environment_window_state, plan_is_stale

from .check_serializers import CheckResultSerializer, PullRequestSerializer
from .evidence import EvidenceSerializer, StagingTicketSerializer, staging_ticket_data
from .followup_serializers import FollowUpSerializer
from .monitoring_serializers import ChecklistItemSerializer, MonitoringSerializer, monitoring_out
from .shapes import (
    ApprovalRuleField,
    ApprovalStatusSerializer,
    ChangeWindowSerializer,
    NameListField,
    PlanSummarySerializer,
    RejectionSerializer,
    RiskRulesField,
)


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
            "auto_deploy",
            "deploy_on_merge",
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


# Keys of a plan summary's resource (deployments.terraform.summary) that plans made before
# they existed lack: a moved resource's previous address, an import.
_RESOURCE_DEFAULTS = {"previous_address": "", "importing": False}
_STATE_COUNTS = ("import_count", "move_count", "forget_count", "invoke_count", "drift_count")


def _summary(run: TerraformRun | None) -> dict[str, Any] | None:
    """The plan's counts and changes: add/change/destroy as Terraform counts them, and what
    changes only Terraform's state (imports, moves, forgets), the actions it invokes and
    the changes Terraform found made outside it (drift, informational)."""
    if run is None or not run.summary:
        return None
    summary = run.summary
    return {
        "add": summary.get("add", 0),
        "change": summary.get("change", 0),
        "destroy": summary.get("destroy", 0),
        **{key: summary.get(key, 0) for key in _STATE_COUNTS},
        "resources": [{**_RESOURCE_DEFAULTS, **r} for r in summary.get("resources") or []],
        "action_invocations": list(summary.get("action_invocations") or []),
        "drift": list(summary.get("drift") or []),
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

    @extend_schema_field(PlanSummarySerializer(allow_null=True))
    def get_summary(self, run: TerraformRun) -> dict[str, Any] | None:
        return _summary(run)

    def get_url(self, run: TerraformRun) -> str:
        return reverse("api:run-detail", args=[run.pk])


class RunSerializer(RunBriefSerializer):
    ticket: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    log = serializers.SerializerMethodField(
        help_text="The end of the log: characters log_start to log_size. Earlier pages: "
        "GET /api/v1/runs/{id}/log/?before=<log_start>."
    )
    log_start = serializers.SerializerMethodField()
    log_size = serializers.SerializerMethodField()

    class Meta(RunBriefSerializer.Meta):
        fields = [*RunBriefSerializer.Meta.fields, "ticket", "log", "log_start", "log_size"]

    def _page(self, run: TerraformRun) -> selectors.LogPage:
        cached = getattr(run, "_log_page", None)
        if cached is None:
            cached = selectors.run_log_page(run)
            run._log_page = cached  # type: ignore[attr-defined]
        return cached

    def get_log(self, run: TerraformRun) -> str:
        return self._page(run).text

    def get_log_start(self, run: TerraformRun) -> int:
        return self._page(run).start

    def get_log_size(self, run: TerraformRun) -> int:
        return self._page(run).size


class LogPageSerializer(serializers.Serializer[Any]):
    """One page of a run's log: characters ``start`` to ``end`` of ``size``."""

    text = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    size = serializers.IntegerField()
    previous = serializers.CharField(
        allow_null=True, help_text="The page before this one (null at the log's start)."
    )


_LEVEL_CHOICES = risk.LEVEL_CHOICES


class BlastItemSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    component = serializers.CharField()
    data_reason = serializers.CharField(
        default="",
        help_text="Why the resource holds data (deployments.data_resources or the "
        "environment's own list); empty when it holds none.",
    )


class BlastMoveSerializer(BlastItemSerializer):
    previous_address = serializers.CharField()


class BlastInvocationSerializer(serializers.Serializer[Any]):
    address = serializers.CharField()
    component = serializers.CharField()
    trigger = serializers.CharField(
        help_text="The lifecycle event that runs it (after_create, ...), or `invoke`."
    )
    resource = serializers.CharField(help_text="The resource whose event triggers it, if any.")


class BlastRadiusSerializer(serializers.Serializer[Any]):
    components = serializers.ListField(child=serializers.CharField())
    destructive = serializers.BooleanField()
    deletes = BlastItemSerializer(many=True)
    replaces = BlastItemSerializer(many=True)
    delete_count = serializers.IntegerField()
    replace_count = serializers.IntegerField()
    # Scored before these existed: read as none.
    forgets = BlastItemSerializer(many=True, default=list)
    imports = BlastItemSerializer(many=True, default=list)
    moves = BlastMoveSerializer(many=True, default=list)
    invocations = BlastInvocationSerializer(many=True, default=list)
    forget_count = serializers.IntegerField(default=0)
    import_count = serializers.IntegerField(default=0)
    move_count = serializers.IntegerField(default=0)
    invoke_count = serializers.IntegerField(default=0)


class RiskOutSerializer(serializers.Serializer[Any]):
    """The questionnaire (null fields when none was given) and the portal's scoring of it
    with the current plan's blast radius."""

    impact = serializers.ChoiceField(choices=_LEVEL_CHOICES, allow_null=True)
    likelihood = serializers.ChoiceField(choices=_LEVEL_CHOICES, allow_null=True)
    summary = serializers.CharField(allow_null=True)
    data_migration = serializers.BooleanField(allow_null=True)
    downtime_expected = serializers.BooleanField(allow_null=True)
    customer_facing = serializers.BooleanField(allow_null=True)
    tested_in_staging = serializers.BooleanField(allow_null=True)
    score = serializers.IntegerField(allow_null=True)
    level = serializers.ChoiceField(choices=_LEVEL_CHOICES, allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())
    blast_radius = BlastRadiusSerializer(allow_null=True)
    plan_run = serializers.IntegerField(allow_null=True)


class KnownGoodSerializer(serializers.Serializer[Any]):
    ticket = serializers.IntegerField(
        allow_null=True, help_text="Null when the caller may not see the ticket that deployed it."
    )
    commit_sha = serializers.CharField()
    deployed_at = serializers.DateTimeField()


class RollbackOutSerializer(serializers.Serializer[Any]):
    """The rollback plan (null fields when none was given) and the environment's last known
    good deployment, picked by the portal."""

    steps = serializers.CharField(allow_null=True)
    expected_minutes = serializers.IntegerField(allow_null=True)
    data_considerations = serializers.CharField(allow_null=True)
    last_known_good = KnownGoodSerializer(allow_null=True)


def risk_out(ticket: Ticket) -> dict[str, Any]:
    q = ticket.risk_assessment if isinstance(ticket.risk_assessment, dict) else {}
    r = ticket.risk if isinstance(ticket.risk, dict) else {}
    out: dict[str, Any] = {key: q.get(key) for key in risk.RISK_FIELDS}
    out.update(
        score=r.get("score"),
        level=r.get("level"),
        reasons=list(r.get("reasons") or []),
        blast_radius=r.get("blast_radius"),
        plan_run=r.get("plan_run"),
    )
    return out


def rollback_out(ticket: Ticket, viewer: Any) -> dict[str, Any]:
    plan = ticket.rollback_plan if isinstance(ticket.rollback_plan, dict) else {}
    good = selectors.known_good_for(
        viewer, selectors.ticket_last_known_good(ticket), ticket.environment
    )
    return {
        **{key: plan.get(key) for key in risk.ROLLBACK_FIELDS},
        "last_known_good": None
        if good is None
        else {
            "ticket": good.ticket_id,
            "commit_sha": good.commit_sha,
            "deployed_at": good.deployed_at,
        },
    }


class ApprovalSerializer(serializers.ModelSerializer[Approval]):
    approver: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    void = serializers.BooleanField(source="is_void", read_only=True)
    held_roles = NameListField(read_only=True)

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
    rollback_of = serializers.SerializerMethodField()
    risk_assessment = serializers.SerializerMethodField()
    rollback_plan = serializers.SerializerMethodField()

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

    @extend_schema_field(PlanSummarySerializer(allow_null=True))
    def get_plan_summary(self, ticket: Ticket) -> dict[str, Any] | None:
        return _summary(ticket.current_plan)

    # One nested serializer per list, not one per ticket: building a serializer copies its
    # fields, which cost more than the rest of a ticket's representation.
    @functools.cached_property
    def _risk_out(self) -> RiskOutSerializer:
        return RiskOutSerializer()

    @functools.cached_property
    def _rollback_out(self) -> RollbackOutSerializer:
        return RollbackOutSerializer()

    @extend_schema_field(RiskOutSerializer)
    def get_risk_assessment(self, ticket: Ticket) -> dict[str, Any]:
        return self._risk_out.to_representation(risk_out(ticket))

    @extend_schema_field(RollbackOutSerializer)
    def get_rollback_plan(self, ticket: Ticket) -> dict[str, Any]:
        return self._rollback_out.to_representation(rollback_out(ticket, self._viewer))

    @property
    def _viewer(self) -> Any:
        request = self.context.get("request")
        return getattr(request, "user", None)

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            help_text="Rollback tickets: the ticket they roll back (null when the caller may "
            "not see it).",
        )
    )
    def get_rollback_of(self, ticket: Ticket) -> int | None:
        pk = ticket.rollback_of_id
        if pk is None or pk not in selectors.visible_ticket_ids(self._viewer, [pk]):
            return None
        return pk


class ConflictingTicketSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    scheduled_for = serializers.DateTimeField()


class ScheduleConflictSerializer(serializers.Serializer[Any]):
    """Tickets scheduled into the same window of one environment; they run in this order."""

    window_opens = serializers.DateTimeField(allow_null=True)
    window_closes = serializers.DateTimeField(allow_null=True)
    position = serializers.IntegerField(
        help_text="This ticket's place in the run order (1 = first)."
    )
    size = serializers.IntegerField(help_text="How many tickets share the window.")
    tickets = ConflictingTicketSerializer(
        many=True, help_text="Those of them the caller may see, in run order."
    )
    hidden = serializers.IntegerField(
        help_text="How many of them the caller may not see (neither id nor title is shown)."
    )


class RollbackTargetSerializer(serializers.Serializer[Any]):
    """The deployment a rollback ticket returns its environment to."""

    deployment = serializers.IntegerField(source="pk")
    ticket = serializers.IntegerField(
        source="ticket_id",
        allow_null=True,
        help_text="Null when the caller may not see the ticket that made that deployment.",
    )
    commit_sha = serializers.CharField()
    var_file = serializers.CharField()
    var_file_sha256 = serializers.CharField()
    deployed_at = serializers.DateTimeField(source="finished_at")


class DriftCheckSerializer(serializers.Serializer[Any]):
    """One drift report of an environment."""

    id = serializers.IntegerField()
    environment = serializers.CharField(source="environment.name")
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


class TicketDetailSerializer(TicketSerializer):
    runs = RunBriefSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()
    approval_status = serializers.SerializerMethodField()
    rejections = serializers.SerializerMethodField()
    checklist = serializers.SerializerMethodField()
    monitoring = serializers.SerializerMethodField()
    follow_ups = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()
    pull_request = serializers.SerializerMethodField()
    plan_stale = serializers.SerializerMethodField()
    schedule_conflict = serializers.SerializerMethodField()
    staging_ticket = serializers.SerializerMethodField()
    rollback_target = serializers.SerializerMethodField()
    rollback_mode = serializers.SerializerMethodField()
    rollback_opened_as = serializers.CharField(source="rollback_mode", read_only=True)
    rollback_immediate_until = serializers.DateTimeField(read_only=True, allow_null=True)
    available_actions = serializers.SerializerMethodField()

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "rollback_mode",
            "rollback_opened_as",
            "rollback_immediate_until",
            "rollback_target",
            "commit_on_branch",
            "available_actions",
            "plan_stale",
            "schedule_conflict",
            "runs",
            "approvals",
            "approval_status",
            "rejections",
            "checklist",
            "monitoring",
            "follow_ups",
            "evidence",
            "checks",
            "pull_request",
            "staging_ticket",
        ]

    @extend_schema_field(
        serializers.ChoiceField(choices=["", "immediate", "planned"]),
    )
    def get_rollback_mode(self, ticket: Ticket) -> str:
        """Rollback tickets: how they are governed now. An immediate rollback (one lead,
        any time) is planned once ``rollback_immediate_until`` has passed (the normal rule,
        window and freezes); ``rollback_opened_as`` keeps the mode it was opened in."""
        return policy.effective_rollback_mode(ticket, timezone.now())

    @extend_schema_field(RollbackTargetSerializer(allow_null=True))
    def get_rollback_target(self, ticket: Ticket) -> dict[str, Any] | None:
        """Rollback tickets: the deployment they return the environment to."""
        target = ticket.rollback_target
        if target is None:
            return None
        data = dict(RollbackTargetSerializer(target).data)
        if target.ticket_id not in selectors.visible_ticket_ids(self._viewer, [target.ticket_id]):
            data["ticket"] = None
        return data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_available_actions(self, ticket: Ticket) -> list[str]:
        """What the caller may do now: approve, reject, deploy, plan, cancel, rollback."""
        request = self.context.get("request")
        if request is None:
            return []
        return selectors.available_actions(ticket, request.user, timezone.now())

    @extend_schema_field(ApprovalSerializer(many=True))
    def get_approvals(self, ticket: Ticket) -> list[dict[str, Any]]:
        return ApprovalSerializer(selectors.ticket_approvals(ticket), many=True).data  # type: ignore[return-value]

    def get_plan_stale(self, ticket: Ticket) -> bool:
        """True: another apply changed the environment since this plan (re-plan needed)."""
        return plan_is_stale(ticket)

    @extend_schema_field(ScheduleConflictSerializer(allow_null=True))
    def get_schedule_conflict(self, ticket: Ticket) -> dict[str, Any] | None:
        request = self.context.get("request")
        conflict = selectors.conflict_seen_by(getattr(request, "user", None), ticket)
        if conflict is None:
            return None
        return {
            "window_opens": conflict.opens.isoformat() if conflict.opens else None,
            "window_closes": conflict.closes.isoformat() if conflict.closes else None,
            "position": conflict.position,
            "size": conflict.size,
            "tickets": [
                {"id": t.pk, "title": t.title, "scheduled_for": t.scheduled_for.isoformat()}
                for t in conflict.tickets
                if t.scheduled_for is not None
            ],
            "hidden": conflict.hidden,
        }

    @extend_schema_field(ApprovalStatusSerializer)
    def get_approval_status(self, ticket: Ticket) -> dict[str, Any]:
        return services.approval_summary(ticket)

    @extend_schema_field(RejectionSerializer(many=True))
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

    def _monitoring(self, ticket: Ticket) -> Monitoring:
        cached: Monitoring | None = getattr(ticket, "_monitoring_view", None)
        if cached is None:
            cached = monitoring_for(ticket, timezone.now())
            ticket._monitoring_view = cached  # type: ignore[attr-defined]
        return cached

    @extend_schema_field(ChecklistItemSerializer(many=True))
    def get_checklist(self, ticket: Ticket) -> list[dict[str, Any]]:
        return ChecklistItemSerializer(self._monitoring(ticket).items, many=True).data  # type: ignore[return-value]

    @extend_schema_field(MonitoringSerializer(allow_null=True))
    def get_monitoring(self, ticket: Ticket) -> dict[str, Any] | None:
        """The latest monitoring period: countdown, alarm, recent checks, completion."""
        return monitoring_out(self._monitoring(ticket))

    @extend_schema_field(CheckResultSerializer(many=True))
    def get_checks(self, ticket: Ticket) -> list[dict[str, Any]]:
        # One query with the reporters, however many reports (a plain nested field made one
        # more per report).
        reports = ticket.checks.select_related("reported_by")
        return CheckResultSerializer(reports, many=True).data  # type: ignore[return-value]

    @extend_schema_field(FollowUpSerializer(many=True))
    def get_follow_ups(self, ticket: Ticket) -> list[dict[str, Any]]:
        return FollowUpSerializer(ticket.follow_ups.select_related("completed_by"), many=True).data  # type: ignore[return-value]

    @extend_schema_field(EvidenceSerializer(many=True))
    def get_evidence(self, ticket: Ticket) -> list[dict[str, Any]]:
        return EvidenceSerializer(evidence_for(ticket), many=True).data  # type: ignore[return-value]

    @extend_schema_field(StagingTicketSerializer(allow_null=True))
    def get_staging_ticket(self, ticket: Ticket) -> dict[str, Any] | None:
        return staging_ticket_data(ticket, self._viewer)

    @extend_schema_field(PullRequestSerializer(allow_null=True))
    def get_pull_request(self, ticket: Ticket) -> dict[str, Any] | None:
        pr = PullRequest.for_commit(ticket.commit_sha)
        return PullRequestSerializer(pr).data if pr else None


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


class _StrictSerializer(serializers.Serializer[Any]):
    """A nested object whose unknown keys are refused (400 naming them), not ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "must be a JSON object (a dictionary of names to values)"
            )
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: [f"unknown field; use {', '.join(self.fields)}"] for key in unknown}
                )
        return super().to_internal_value(data)


class RiskAssessmentSerializer(_StrictSerializer):
    """The author's risk questionnaire (required for prod)."""

    impact = serializers.ChoiceField(choices=_LEVEL_CHOICES)
    likelihood = serializers.ChoiceField(choices=_LEVEL_CHOICES)
    summary = serializers.CharField(
        min_length=1, max_length=risk.SUMMARY_MAX, validators=[_NOT_BLANK]
    )
    data_migration = serializers.BooleanField(required=False, default=False)
    downtime_expected = serializers.BooleanField(required=False, default=False)
    customer_facing = serializers.BooleanField(required=False, default=False)
    tested_in_staging = serializers.BooleanField(required=False, default=False)


class RollbackPlanSerializer(_StrictSerializer):
    """How to undo the change (required for prod)."""

    steps = serializers.CharField(min_length=1, max_length=risk.STEPS_MAX, validators=[_NOT_BLANK])
    expected_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=risk.EXPECTED_MINUTES_MAX,
    )
    data_considerations = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=risk.DATA_CONSIDERATIONS_MAX,
        validators=[_NO_NUL],
    )


class TicketCreateSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(
        min_length=1,
        max_length=validation.TITLE_MAX,
        validators=[
            RegexValidator(
                validation.LINE_PATTERN,
                f"title must contain a visible character and {validation.LINE_PROBLEM}",
            )
        ],
        help_text="One line of text: no control characters (CR, LF, tab ...) or direction "
        "overrides.",
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
    risk_assessment = RiskAssessmentSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Required (400 without it) where the environment requires change details.",
    )
    rollback_plan = RollbackPlanSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="Required (400 without it) where the environment requires change details.",
    )
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
