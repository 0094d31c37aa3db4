"""Tickets as the API shows them: a list row (TicketSerializer) and the detail
(TicketDetailSerializer, which reads selectors.ticket_view like the ticket page)."""

from __future__ import annotations

import functools
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from deployments import selectors
from deployments.api.shapes import policies as policy_shapes
from deployments.api.shapes.approvals import ApprovalSerializer
from deployments.api.shapes.checks import CheckResultSerializer, PullRequestSerializer
from deployments.api.shapes.common import (
    ApprovalStatusSerializer,
    PlanSummarySerializer,
    RejectionSerializer,
)
from deployments.api.shapes.evidence import (
    EvidenceSerializer,
    StagingTicketSerializer,
    staging_ticket_out,
)
from deployments.api.shapes.followups import FollowUpSerializer
from deployments.api.shapes.monitoring import (
    ChecklistItemSerializer,
    MonitoringSerializer,
    monitoring_out,
)
from deployments.api.shapes.review import (
    PlanChangeSerializer,
    TimelineStepSerializer,
    plan_changes_out,
    timeline_out,
)
from deployments.api.shapes.risk import (
    RiskOutSerializer,
    RollbackOutSerializer,
    RollbackTargetSerializer,
    risk_out,
    rollback_out,
)
from deployments.api.shapes.runs import RunBriefSerializer, plan_summary_out
from deployments.models import Ticket


class TriggeredBySerializer(serializers.Serializer[Any]):
    """A run trigger: the upstream stack's deployment whose success filed this ticket."""

    deployment = serializers.IntegerField()
    stack = serializers.CharField()
    ticket = serializers.IntegerField(
        allow_null=True, help_text="The upstream ticket; null when you may not see it."
    )


class TicketSerializer(serializers.ModelSerializer[Ticket]):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    stack: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, help_text="The stack (Terraform root) it changes."
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
            "stack",
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
        return plan_summary_out(ticket.current_plan)

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
        good = selectors.known_good_for(
            self._viewer, selectors.ticket_last_known_good(ticket), ticket.environment
        )
        return self._rollback_out.to_representation(rollback_out(ticket, good))

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


class TicketDetailSerializer(TicketSerializer):
    """A ticket's detail: its fields read selectors.ticket_view, as the ticket page does (runs:
    the ones ticket_get loaded, which the view lists too)."""

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
    policy_status = serializers.SerializerMethodField()
    policies = serializers.SerializerMethodField()
    triggered_by = serializers.SerializerMethodField()
    timeline = serializers.SerializerMethodField()
    plan_changes = serializers.SerializerMethodField()

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "policy_status",
            "policies",
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
            "triggered_by",
            "timeline",
            "plan_changes",
        ]

    @extend_schema_field(TriggeredBySerializer(allow_null=True))
    def get_triggered_by(self, ticket: Ticket) -> dict[str, Any] | None:
        found = self.view(ticket).triggered_by
        if found is None:
            return None
        return {"deployment": found.deployment_id, "stack": found.stack, "ticket": found.ticket_id}

    @extend_schema_field(TimelineStepSerializer(many=True))
    def get_timeline(self, ticket: Ticket) -> list[dict[str, Any]]:
        return timeline_out(self.view(ticket).timeline)

    @extend_schema_field(PlanChangeSerializer(many=True))
    def get_plan_changes(self, ticket: Ticket) -> list[dict[str, Any]]:
        return plan_changes_out(self.view(ticket).plan_review)

    def view(self, ticket: Ticket) -> selectors.TicketView:
        """The ticket as the caller sees it: the one view model the ticket page reads too."""
        views = self.context.setdefault("_ticket_views", {})
        if ticket.pk not in views:
            views[ticket.pk] = selectors.ticket_view(ticket, self._viewer, timezone.now())
        return views[ticket.pk]

    @extend_schema_field(
        serializers.ChoiceField(choices=["", "immediate", "planned"]),
    )
    def get_rollback_mode(self, ticket: Ticket) -> str:
        """Rollback tickets: how they are governed now. An immediate rollback (one lead,
        any time) is planned once ``rollback_immediate_until`` has passed (the normal rule,
        window and freezes); ``rollback_opened_as`` keeps the mode it was opened in."""
        return self.view(ticket).rollback_mode_now

    @extend_schema_field(RollbackTargetSerializer(allow_null=True))
    def get_rollback_target(self, ticket: Ticket) -> dict[str, Any] | None:
        """Rollback tickets: the deployment they return the environment to."""
        view = self.view(ticket)
        if view.rollback_target is None:
            return None
        data = dict(RollbackTargetSerializer(view.rollback_target).data)
        data["ticket"] = view.rollback_target_ticket_id
        return data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_available_actions(self, ticket: Ticket) -> list[str]:
        """What the caller may do now: approve, reject, deploy, plan, cancel, rollback."""
        if self._viewer is None:
            return []
        return self.view(ticket).available_actions

    @extend_schema_field(ApprovalSerializer(many=True))
    def get_approvals(self, ticket: Ticket) -> list[dict[str, Any]]:
        return ApprovalSerializer(self.view(ticket).approvals, many=True).data  # type: ignore[return-value]

    @policy_shapes.run_policy_status_schema
    def get_policy_status(self, ticket: Ticket) -> str | None:
        """What the current plan's Rego policies decide (docs/policies.md)."""
        return self.view(ticket).policies.status

    @extend_schema_field(policy_shapes.TicketPoliciesSerializer)
    def get_policies(self, ticket: Ticket) -> dict[str, Any]:
        data = policy_shapes.ticket_policies_out(self.view(ticket).policies)
        return policy_shapes.TicketPoliciesSerializer(data).data

    def get_plan_stale(self, ticket: Ticket) -> bool:
        """True: another apply changed the environment since this plan (re-plan needed)."""
        return self.view(ticket).plan_stale

    @extend_schema_field(ScheduleConflictSerializer(allow_null=True))
    def get_schedule_conflict(self, ticket: Ticket) -> dict[str, Any] | None:
        conflict = self.view(ticket).schedule_conflict
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
        return self.view(ticket).approval_status

    @extend_schema_field(RejectionSerializer(many=True))
    def get_rejections(self, ticket: Ticket) -> list[dict[str, Any]]:
        return [
            {
                "rejected_by": r.rejected_by.get_username(),
                "reason": r.reason,
                "plan_run": r.plan_run_id,
                "created_at": r.created_at.isoformat(),
            }
            for r in self.view(ticket).rejections
        ]

    @extend_schema_field(ChecklistItemSerializer(many=True))
    def get_checklist(self, ticket: Ticket) -> list[dict[str, Any]]:
        return ChecklistItemSerializer(self.view(ticket).monitoring.items, many=True).data  # type: ignore[return-value]

    @extend_schema_field(MonitoringSerializer(allow_null=True))
    def get_monitoring(self, ticket: Ticket) -> dict[str, Any] | None:
        """The latest monitoring period: countdown, alarm, recent checks, completion."""
        return monitoring_out(self.view(ticket).monitoring)

    @extend_schema_field(CheckResultSerializer(many=True))
    def get_checks(self, ticket: Ticket) -> list[dict[str, Any]]:
        return CheckResultSerializer(self.view(ticket).checks, many=True).data  # type: ignore[return-value]

    @extend_schema_field(FollowUpSerializer(many=True))
    def get_follow_ups(self, ticket: Ticket) -> list[dict[str, Any]]:
        return FollowUpSerializer(self.view(ticket).follow_ups, many=True).data  # type: ignore[return-value]

    @extend_schema_field(EvidenceSerializer(many=True))
    def get_evidence(self, ticket: Ticket) -> list[dict[str, Any]]:
        return EvidenceSerializer(self.view(ticket).evidence.items, many=True).data  # type: ignore[return-value]

    @extend_schema_field(StagingTicketSerializer(allow_null=True))
    def get_staging_ticket(self, ticket: Ticket) -> dict[str, Any] | None:
        return staging_ticket_out(self.view(ticket).evidence.staging)

    @extend_schema_field(PullRequestSerializer(allow_null=True))
    def get_pull_request(self, ticket: Ticket) -> dict[str, Any] | None:
        pr = self.view(ticket).pull_request
        return PullRequestSerializer(pr).data if pr else None

    @extend_schema_field(RollbackOutSerializer)
    def get_rollback_plan(self, ticket: Ticket) -> dict[str, Any]:
        return self._rollback_out.to_representation(
            rollback_out(ticket, self.view(ticket).last_known_good)
        )

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            help_text="Rollback tickets: the ticket they roll back (null when the caller may "
            "not see it).",
        )
    )
    def get_rollback_of(self, ticket: Ticket) -> int | None:
        return self.view(ticket).rollback_of_id
