"""Tickets on the API: list, file, read, and the verbs that move them (each validates its
input serializer, defined here, and calls one service)."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors, services
from deployments.api.checks import TicketChecksMixin
from deployments.api.evidence import EvidenceActionsMixin
from deployments.api.followups import FollowUpActionsMixin
from deployments.api.monitoring import MonitoringActionsMixin
from deployments.api.policies import PolicyOverrideActionsMixin
from deployments.api.replans import ReplanActionsMixin
from deployments.api.schedules import TicketScheduleMixin
from deployments.api.shapes.risk import (
    LEVEL_CHOICES,
)
from deployments.api.shapes.runs import RunSerializer
from deployments.api.shapes.tickets import TicketDetailSerializer, TicketSerializer
from deployments.api.support.fastrep import compile_rows
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.api.support.inputs import HEX40, HEX64, NO_NUL, NOT_BLANK, StrictSerializer
from deployments.choices import ChangeType, TicketStatus
from deployments.lib import validation
from deployments.models import Ticket
from deployments.policy import risk


class RiskAssessmentSerializer(StrictSerializer):
    """The author's risk questionnaire (required for prod)."""

    impact = serializers.ChoiceField(choices=LEVEL_CHOICES)
    likelihood = serializers.ChoiceField(choices=LEVEL_CHOICES)
    summary = serializers.CharField(
        min_length=1, max_length=risk.SUMMARY_MAX, validators=[NOT_BLANK]
    )
    data_migration = serializers.BooleanField(required=False, default=False)
    downtime_expected = serializers.BooleanField(required=False, default=False)
    customer_facing = serializers.BooleanField(required=False, default=False)
    tested_in_staging = serializers.BooleanField(required=False, default=False)


class RollbackPlanSerializer(StrictSerializer):
    """How to undo the change (required for prod)."""

    steps = serializers.CharField(min_length=1, max_length=risk.STEPS_MAX, validators=[NOT_BLANK])
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
        validators=[NO_NUL],
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
    stack = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        validators=[RegexValidator(r"^[a-z0-9_-]*$", "a stack name")],
        help_text="A stack name (GET /api/v1/stacks/): required (400 without it) when there "
        "is more than one; otherwise the only stack.",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=validation.DESCRIPTION_MAX,
        validators=[NO_NUL],
    )
    commit_sha = serializers.RegexField(
        HEX40,
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
        validators=[NO_NUL],
    )


class PlanSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        validators=[NO_NUL],
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
        validators=[NO_NUL],
    )
    plan_sha256 = serializers.RegexField(
        HEX64,
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
        min_length=1, max_length=validation.COMMENT_MAX, validators=[NOT_BLANK]
    )


_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


_AUTHOR_RE = re.compile(r"[\w.@+-]{1,150}", re.ASCII)


_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,40}")
_STACK_RE = re.compile(r"[a-z0-9_-]{1,64}")


_TICKET_VERBS = ["retrieve", "plan", "cancel", "approve", "reject", "deploy", "rollback"]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "environment",
                OpenApiTypes.STR,
                description="An environment name (no NUL characters).",
                pattern=r"^[^\u0000]{0,64}$",
            ),
            OpenApiParameter(
                "stack",
                OpenApiTypes.STR,
                description="A stack name; empty: any.",
                pattern=r"^[a-z0-9_-]{0,64}$",
            ),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=["", *TicketStatus.values],
                description="A ticket status; empty: any.",
            ),
            OpenApiParameter(
                "author",
                OpenApiTypes.STR,
                description="The author's username (tickets filed by that person); empty: any.",
                pattern=r"^([\w.@+-]{1,150})?$",
            ),
            OpenApiParameter(
                "commit",
                OpenApiTypes.STR,
                description=(
                    "A commit SHA: all 40 hex digits, or a prefix of at least 7; empty: any."
                ),
                pattern="^([0-9a-fA-F]{7,40})?$",
            ),
        ]
    ),
    **{verb: extend_schema(parameters=[_ID]) for verb in _TICKET_VERBS},
)
class TicketViewSet(
    ReplanActionsMixin,
    TicketChecksMixin,
    FollowUpActionsMixin,
    MonitoringActionsMixin,
    PolicyOverrideActionsMixin,
    TicketScheduleMixin,
    EvidenceActionsMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet[Ticket],
):
    """Deployment tickets: list, file, read, and the verbs that move them."""

    serializer_class = TicketSerializer
    # Only numbers reach the views; anything else is a 404 from the URL resolver.
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[Ticket]:
        params = self.request.query_params
        status_filter = params.get("status", "")
        if status_filter and status_filter not in TicketStatus.values:
            raise ValidationError({"status": [f"unknown status {status_filter!r}"]})
        try:
            environment = validation.clean_text(params.get("environment", ""), "environment", 64)
        except services.InputError as exc:
            raise ValidationError({"environment": [exc.message]}) from None
        stack = params.get("stack", "")
        if stack and not _STACK_RE.fullmatch(stack):
            raise ValidationError({"stack": ["stack must be a stack name (a-z, 0-9, - and _)"]})
        author = params.get("author", "")
        if author and not _AUTHOR_RE.fullmatch(author):
            raise ValidationError(
                {"author": ["author must be a username (letters, digits, @.+-_)"]}
            )
        commit = params.get("commit", "")
        if commit and not _COMMIT_RE.fullmatch(commit):
            raise ValidationError(
                {"commit": ["commit must be 40 hex digits or a prefix of at least 7"]}
            )
        return selectors.ticket_list(
            self.request.user,
            environment=environment,
            status=status_filter,
            author=author,
            commit=commit.lower(),
            stack=stack,
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        # The serializer's output, built without DRF's per-field machinery (fastrep).
        rows = compile_rows(self.get_serializer())(page or [])
        return self.get_paginated_response(rows)

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        # Each ticket's rollback_plan.last_known_good, for the whole page at once, and which
        # of the tickets it names the caller may see (one query, not one per row).
        tickets = page or []
        selectors.attach_last_known_good(tickets)
        named = [t.rollback_of_id for t in tickets]
        named += [good.ticket_id for t in tickets if (good := selectors.ticket_last_known_good(t))]
        selectors.visible_ticket_ids(self.request.user, named)
        return page

    def _detail(self, ticket: Ticket, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.ticket_get(self.request.user, ticket.pk)
        return Response(
            TicketDetailSerializer(fresh, context={"request": self.request}).data, status=code
        )

    @extend_schema(
        request=TicketCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TicketDetailSerializer},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        payload = TicketCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ticket = services.ticket_create(
            actor=request.user,
            data=services.TicketInput(**payload.validated_data),
            source="api",
        )
        return self._detail(ticket, status.HTTP_201_CREATED)

    @extend_schema(responses=TicketDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        return Response(TicketDetailSerializer(ticket, context={"request": request}).data)

    @extend_schema(request=PlanSerializer, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def plan(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = PlanSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = services.ticket_plan(
            ticket_id=ticket.pk, actor=request.user, reason=payload.validated_data["reason"]
        )
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=CommentSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = CommentSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.ticket_cancel(
            ticket_id=ticket.pk, actor=request.user, reason=payload.validated_data["reason"]
        )
        return self._detail(ticket)

    @extend_schema(request=ApproveSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = ApproveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.approval_grant(
            ticket_id=ticket.pk,
            actor=request.user,
            comment=payload.validated_data["comment"],
            plan_sha256=payload.validated_data["plan_sha256"],
        )
        return self._detail(ticket)

    @extend_schema(request=RejectSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = RejectSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.ticket_reject(
            ticket_id=ticket.pk, actor=request.user, reason=payload.validated_data["reason"]
        )
        return self._detail(ticket)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: TicketDetailSerializer},
        description=(
            "Open a rollback ticket for this deployed ticket: it plans the commit and "
            "var-file of the environment's last known good deployment before this one. "
            "Opened within ROLLBACK_IMMEDIATE_MINUTES of the deployment it is immediate (one "
            "Tech Lead or DevOps Lead approves; it may deploy outside the window); later it "
            "follows the environment's normal rule and windows. 201 with the new ticket; 403 "
            "unless the caller deploys the environment or is a Tech Lead or DevOps Lead; 404 "
            "for a ticket the caller cannot see; 409 when it is not deployed, there is no "
            "earlier good deployment, a later deployment must be rolled back first, or a "
            "rollback of it is already open (its id in `rollback`)."
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def rollback(self, request: Request, pk: str) -> Response:
        original = selectors.ticket_get(request.user, pk)
        ticket = services.rollback_open(ticket_id=original.pk, actor=request.user, source="api")
        return self._detail(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        run = services.ticket_deploy(ticket_id=ticket.pk, actor=request.user)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
