"""API: schedule/unschedule a ticket's apply, and declare freezes on an environment."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors
from deployments.policy import LEAD_ROLES, PolicyError
from deployments.services import schedules

from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent
from .serializers import _NO_NUL, FreezeSerializer, TicketDetailSerializer

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[A-Za-z0-9_-]{1,32}$"
)

# Who may declare a freeze through the API: the leads and operations.
FREEZE_ROLES = LEAD_ROLES | {"operations"}


class ScheduleSerializer(serializers.Serializer[Any]):
    """Either ``at`` (an instant inside a window, ISO 8601 with its UTC offset) or
    ``"next_window": true`` (the next instant a deploy may begin, freezes applied)."""

    at = serializers.DateTimeField(required=False)
    next_window = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("at" in attrs) == bool(attrs.get("next_window")):
            raise serializers.ValidationError(
                {"at": ['send either "at" (an ISO 8601 instant) or "next_window": true']}
            )
        return attrs


class FreezeCreateSerializer(serializers.Serializer[Any]):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=200, validators=[_NO_NUL])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["ends_at"] <= attrs["starts_at"]:
            raise serializers.ValidationError({"ends_at": ["a freeze must end after it starts"]})
        if not attrs["reason"].strip():
            raise serializers.ValidationError({"reason": ["a freeze needs a reason"]})
        return attrs


class TicketScheduleMixin:
    """``POST /tickets/{id}/schedule/`` and ``/unschedule/`` (added to TicketViewSet)."""

    @extend_schema(
        parameters=[_ID],
        request=ScheduleSerializer,
        responses={200: TicketDetailSerializer},
        description=(
            "Schedule the approved ticket's apply for a window. Who may deploy may schedule "
            "(step-up rules as for deploy). 409 outside any window, during a freeze, for a "
            "stale plan or a ticket that is not approved."
        ),
    )
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = ScheduleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        schedules.ticket_schedule(
            ticket_id=ticket.pk,
            actor=request.user,
            at=payload.validated_data.get("at"),
            next_window=payload.validated_data.get("next_window", False),
        )
        fresh = selectors.ticket_get(request.user, ticket.pk)
        return Response(TicketDetailSerializer(fresh, context={"request": request}).data)

    @extend_schema(parameters=[_ID], request=None, responses={200: TicketDetailSerializer})
    @action(detail=True, methods=["post"])
    def unschedule(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        schedules.ticket_unschedule(ticket_id=ticket.pk, actor=request.user)
        fresh = selectors.ticket_get(request.user, ticket.pk)
        return Response(TicketDetailSerializer(fresh, context={"request": request}).data)


class EnvironmentFreezeMixin:
    """``POST /environments/{name}/freezes/``: a lead or operations declares a freeze."""

    @extend_schema(
        parameters=[_NAME, IDEMPOTENCY_KEY],
        request=FreezeCreateSerializer,
        responses={201: FreezeSerializer},
        description="Declare a freeze (blackout): no normal deploy may begin inside it.",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def freezes(self, request: Request, name: str) -> Response:
        env = self.get_object()  # type: ignore[attr-defined]  # 404 outside the caller's scope
        if not (selectors.user_roles(request.user) & FREEZE_ROLES):
            raise PolicyError(
                "only a Lead Developer, Tech Lead, DevOps Lead or Operations can declare a freeze",
                PolicyError.ACTOR,
            )
        payload = FreezeCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        freeze = schedules.freeze_declare(
            actor=request.user, environment=env, **payload.validated_data
        )
        return Response(FreezeSerializer(freeze).data, status=status.HTTP_201_CREATED)
