"""The v1 API: read endpoints over selectors, write verbs that call one service each."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import policy, selectors, services, validation
from deployments.choices import TicketStatus
from deployments.models import Environment, TerraformRun, Ticket

from .checks import TicketChecksMixin
from .evidence import EvidenceActionsMixin
from .fastrep import compile_rows
from .followups import FollowUpActionsMixin
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent
from .monitoring import MonitoringActionsMixin
from .schedules import EnvironmentFreezeMixin, TicketScheduleMixin
from .serializers import (
    ApproveSerializer,
    CommentSerializer,
    DriftCheckSerializer,
    EnvironmentSerializer,
    LogPageSerializer,
    PlanSerializer,
    RejectSerializer,
    RunSerializer,
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketSerializer,
)

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_NAME_RE = "[A-Za-z0-9_-]{1,32}"
_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{_NAME_RE}$")
_AUTHOR_RE = re.compile(r"[\w.@+-]{1,150}", re.ASCII)
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,40}")
_TICKET_VERBS = ["retrieve", "plan", "cancel", "approve", "reject", "deploy", "rollback"]


@extend_schema_view(retrieve=extend_schema(parameters=[_NAME]))
class EnvironmentViewSet(
    EnvironmentFreezeMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Environment],
):
    """Environments the caller may see, with their policy and change window."""

    serializer_class = EnvironmentSerializer
    lookup_field = "name"
    lookup_value_regex = _NAME_RE
    pagination_class = None

    def get_queryset(self) -> QuerySet[Environment]:
        visible = [env.pk for env in selectors.environments_visible_to(self.request.user)]
        return Environment.objects.filter(pk__in=visible)

    @extend_schema(
        parameters=[_NAME],
        responses={200: DriftCheckSerializer(many=True)},
        description=(
            "The environment's latest drift reports (at most 10, newest first): each a "
            "`terraform plan -detailed-exitcode` of the last deployed commit and var-file; "
            "status drifted when it found changes. Seen by those who see the environment's "
            "tickets (404 for others)."
        ),
    )
    @action(detail=True, methods=["get"])
    def drift(self, request: Request, name: str) -> Response:
        env = self.get_object()
        if not policy.can_view(
            env, selectors.user_roles(request.user), superuser=request.user.is_superuser
        ):
            raise Http404("No such environment")
        return Response(DriftCheckSerializer(selectors.drift_checks_of(env), many=True).data)


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
    TicketChecksMixin,
    FollowUpActionsMixin,
    MonitoringActionsMixin,
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


@extend_schema_view(retrieve=extend_schema(parameters=[_ID]))
class RunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[TerraformRun]):
    """Terraform runs with their full (redacted) log."""

    serializer_class = RunSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[TerraformRun]:
        return selectors.runs_visible_to(self.request.user)

    def get_object(self) -> TerraformRun:
        return selectors.run_get(self.request.user, self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(RunSerializer(self.get_object()).data)

    @extend_schema(
        parameters=[
            _ID,
            OpenApiParameter(
                "before",
                {"type": "integer", "minimum": 0},
                description="Character offset the page ends at (default: the log's end). "
                "Page backwards with each answer's `start`.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": selectors.LOG_PAGE_CHARS},
                description=f"Characters per page (at most {selectors.LOG_PAGE_CHARS}).",
            ),
        ],
        responses=LogPageSerializer,
    )
    @action(detail=True, methods=["get"], url_path="log")
    def log(self, request: Request, pk: str | None = None) -> Response:
        """The run's log page by page, from its end: tail first, then ?before=<start>."""
        run = self.get_object()
        before: int | None = None
        limit = selectors.LOG_PAGE_CHARS
        try:
            if request.query_params.get("before") not in (None, ""):
                before = int(request.query_params["before"])
            if request.query_params.get("limit") not in (None, ""):
                limit = int(request.query_params["limit"])
        except ValueError:
            raise ValidationError({"detail": "before and limit must be integers"}) from None
        if (before is not None and before < 0) or not 1 <= limit <= selectors.LOG_PAGE_CHARS:
            raise ValidationError(
                {
                    "detail": "before must be 0 or more and limit from 1 to "
                    f"{selectors.LOG_PAGE_CHARS}"
                }
            )
        page = selectors.run_log_page(run, before=before, limit=limit)
        previous = (
            f"{reverse('api:run-log', args=[run.pk])}?before={page.start}&limit={limit}"
            if page.start > 0
            else None
        )
        return Response(
            LogPageSerializer(
                {
                    "text": page.text,
                    "start": page.start,
                    "end": page.end,
                    "size": page.size,
                    "previous": previous,
                }
            ).data
        )
