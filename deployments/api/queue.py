"""``GET /api/v1/me/queue/``: what waits for the caller, over deployments.selectors.queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.models import Ticket
from deployments.selectors.queue import queue_for

# --- me/queue ------------------------------------------------------------------------


class QueueTicketSerializer(serializers.Serializer[Ticket]):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    web_url = serializers.SerializerMethodField()
    title = serializers.CharField()
    environment = serializers.CharField(source="environment.name")
    status = serializers.CharField()
    change_type = serializers.CharField()
    author = serializers.CharField(source="author.username")
    commit_sha = serializers.CharField()
    status_changed_at = serializers.DateTimeField()

    def get_url(self, ticket: Ticket) -> str:
        return reverse("api:ticket-detail", args=[ticket.pk])

    def get_web_url(self, ticket: Ticket) -> str:
        return reverse("ticket_detail", args=[ticket.pk])


def _seconds(delta: dt.timedelta) -> int:
    return int(delta.total_seconds())


class ApprovalItemSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    emergency = serializers.BooleanField()
    risk_level = serializers.CharField(help_text='"low", "medium", "high" or "" (not assessed)')
    waiting_since = serializers.DateTimeField(help_text="When it entered awaiting_approval.")
    waiting_seconds = serializers.SerializerMethodField()
    reason = serializers.CharField(
        help_text='Who else the rule still needs besides you, e.g. "needs a DevOps Lead" '
        '("" when yours is the last approval).'
    )
    deadline = serializers.DateTimeField(
        allow_null=True, help_text="An immediate rollback's hour ends then (else null)."
    )

    def get_waiting_seconds(self, item: Any) -> int:
        return _seconds(item.waiting_for)


class WindowSerializer(serializers.Serializer[Any]):
    has_window = serializers.BooleanField()
    in_window_now = serializers.BooleanField()
    closes_at = serializers.DateTimeField(allow_null=True)
    next_window_start = serializers.DateTimeField(allow_null=True)
    timezone = serializers.CharField(source="zone")


class DeployItemSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    emergency = serializers.BooleanField()
    scheduled_for = serializers.DateTimeField(allow_null=True)
    may_start_now = serializers.BooleanField(
        help_text="Inside the window (emergencies ignore it) and no apply running."
    )
    busy = serializers.BooleanField()
    countdown = serializers.CharField(help_text='E.g. "in window now, closes in 1 h 5 min".')
    window = WindowSerializer()
    reason = serializers.CharField(
        help_text='Why it may not start now, in a sentence ("" when it may): the same rule '
        "the deploy action asks."
    )
    deadline = serializers.DateTimeField(
        allow_null=True,
        help_text="Until when it may start: the open window's end, or an immediate "
        "rollback's hour.",
    )
    stale = serializers.BooleanField(
        help_text="Another deploy changed the environment since its plan: re-plan (and "
        "re-schedule) first."
    )


class BlockedApprovalSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    reason = serializers.CharField(help_text="What must happen before anyone may approve it.")


class MonitoringItemSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    ends_at = serializers.DateTimeField(allow_null=True, help_text="The monitoring period ends.")
    open_items = serializers.ListField(
        child=serializers.CharField(), help_text="Checklist items not signed off yet."
    )
    alarm = serializers.ChoiceField(choices=["", "alarm", "acknowledged"])
    may_complete = serializers.BooleanField()
    reason = serializers.CharField(help_text='What is left before Complete, or "ready".')


class QaItemSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    monitoring_since = serializers.DateTimeField()
    missing = serializers.ListField(
        child=serializers.CharField(), help_text="What the sign-off still lacks."
    )


class MyTicketSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    active = serializers.BooleanField(help_text="Not in a terminal state.")


class FollowUpItemSerializer(serializers.Serializer[Any]):
    ticket = QueueTicketSerializer()
    id = serializers.IntegerField(source="follow_up.id")
    kind = serializers.CharField(source="follow_up.kind")
    due_at = serializers.DateTimeField(source="follow_up.due_at")
    overdue_seconds = serializers.SerializerMethodField(
        help_text="Negative while it is not due yet (follow_ups_due_soon)."
    )

    def get_overdue_seconds(self, item: Any) -> int:
        return _seconds(item.overdue_for)


class LastDeploymentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="deployment_id")
    ticket = serializers.IntegerField(source="ticket_id")
    commit_sha = serializers.CharField()
    finished_at = serializers.DateTimeField()
    outcome = serializers.CharField()
    rolled_back = serializers.BooleanField()


class EnvironmentItemSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(source="environment.name")
    last_deployment = LastDeploymentSerializer(source="last", allow_null=True)
    window = WindowSerializer()
    busy = serializers.BooleanField(help_text="An apply is queued or running.")
    history_url = serializers.SerializerMethodField()

    def get_history_url(self, item: Any) -> str:
        return reverse("api:deployment-list") + f"?environment={item.environment.name}"


class _Counted(serializers.Serializer[Any]):
    count = serializers.IntegerField()


class ApprovalsSection(_Counted):
    results = ApprovalItemSerializer(many=True)


class DeploysSection(_Counted):
    results = DeployItemSerializer(many=True)


class QaSection(_Counted):
    results = QaItemSerializer(many=True)


class BlockedApprovalsSection(_Counted):
    results = BlockedApprovalSerializer(many=True)


class MonitoringSection(_Counted):
    results = MonitoringItemSerializer(many=True)


class MySection(_Counted):
    count = serializers.IntegerField(help_text="Tickets not finished.")
    finished_count = serializers.IntegerField(help_text="Tickets finished in the last 14 days.")
    results = MyTicketSerializer(many=True)


class FollowUpsSection(_Counted):
    results = FollowUpItemSerializer(many=True)


class QueueSerializer(serializers.Serializer[Any]):
    now = serializers.DateTimeField()
    waiting = serializers.IntegerField(
        help_text="approvals + deploys + qa_signoffs + monitoring + follow_ups + "
        "follow_ups_due_soon: the nav badge."
    )
    sections = serializers.ListField(
        child=serializers.CharField(), help_text="The sections that concern the caller."
    )
    approvals = ApprovalsSection()
    deploys = DeploysSection()
    qa_signoffs = QaSection()
    approvals_blocked = BlockedApprovalsSection(
        help_text="Tickets the caller could approve but for a gate of the ticket (the "
        "promotion gate, a required CI check), each with the reason; not in waiting."
    )
    monitoring = MonitoringSection(
        help_text="Operations: tickets in their monitoring period, waiting for the checklist "
        "and Complete."
    )
    my_tickets = MySection()
    follow_ups = FollowUpsSection(help_text="Overdue follow-ups.")
    follow_ups_due_soon = FollowUpsSection(help_text="Follow-ups due within 24 hours.")
    environments = EnvironmentItemSerializer(many=True)


def queue_out(queue: Any) -> dict[str, Any]:
    flags = queue.sections
    return {
        "now": queue.now,
        "waiting": queue.waiting,
        "sections": [
            name
            for name in (
                "approvals",
                "deploys",
                "qa_signoffs",
                "monitoring",
                "my_tickets",
                "follow_ups",
            )
            if getattr(flags, name)
        ],
        "approvals": {"count": queue.approvals_count, "results": queue.approvals},
        "deploys": {"count": queue.deploys_count, "results": queue.deploys},
        "qa_signoffs": {"count": queue.qa_signoffs_count, "results": queue.qa_signoffs},
        "approvals_blocked": {
            "count": queue.approvals_blocked_count,
            "results": queue.approvals_blocked,
        },
        "monitoring": {"count": queue.monitoring_count, "results": queue.monitoring},
        "my_tickets": {
            "count": queue.my_tickets_count,
            "finished_count": queue.my_finished_count,
            "results": queue.my_tickets,
        },
        "follow_ups": {"count": queue.follow_ups_count, "results": queue.follow_ups},
        "follow_ups_due_soon": {
            "count": queue.follow_ups_due_soon_count,
            "results": queue.follow_ups_due_soon,
        },
        "environments": queue.environments,
    }


class MeQueueView(APIView):
    @extend_schema(
        operation_id="me_queue",
        responses={200: QueueSerializer},
        description=(
            "What waits for the caller, by section, each row with what they can do now, the "
            "reason when they cannot and the deadline: approvals (tickets they may approve "
            "now, by the same rule as the approve action; emergencies first, then the longest "
            "waiting), approvals_blocked (those a gate of the ticket still blocks, with why), "
            "deploys (approved or scheduled tickets of environments they deploy, or immediate "
            "rollbacks they approved where leads start them; may_start_now, reason, deadline, "
            "stale), qa_signoffs (monitored staging tickets waiting for evidence or QA's "
            "sign-off), monitoring (operations: tickets in their monitoring period, with the "
            "open checklist and whether Complete is possible), my_tickets (their tickets, "
            "unfinished first, then up to 20 finished in the last 14 days), follow_ups "
            "(overdue reviews: all visible ones for leads, their own tickets' for others), "
            "follow_ups_due_soon (the same, due within 24 h) and environments (last "
            "deployment, window, busy). Each section lists up to 50 rows (my_tickets 20 of "
            "each kind) and counts all of them. The same data as the home page."
        ),
    )
    def get(self, request: Request) -> Response:
        queue = queue_for(request.user, timezone.now())
        return Response(QueueSerializer(queue_out(queue)).data)
