"""API: schedule/unschedule a ticket's apply, and declare freezes on an environment."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors
from deployments.models import Freeze
from deployments.services import schedules

from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent
from .serializers import _NO_NUL, FreezeSerializer, TicketDetailSerializer

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[A-Za-z0-9_-]{1,32}$"
)


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


class FreezeUpdateSerializer(serializers.Serializer[Any]):
    """Any of the three; what is left out stays."""

    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(max_length=200, validators=[_NO_NUL], required=False)


class FreezeLiftSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=200, validators=[_NO_NUL], help_text="Why the freeze is lifted (audited)."
    )


class FreezeLiftedSerializer(serializers.Serializer[Any]):
    withdrawn = serializers.BooleanField(
        help_text="True: it had not started and is gone; false: it was in force and ends now."
    )
    freeze = FreezeSerializer(allow_null=True, help_text="The freeze as it stays (null if gone).")


_FREEZE_ID = OpenApiParameter("freeze_id", OpenApiTypes.INT, OpenApiParameter.PATH)
_WHO = (
    "Who may is the environment's `freeze_groups` (defaults: prod by a Tech Lead, a DevOps "
    "Lead or Operations; dev and staging by any lead or Operations): 403 for others. A "
    "freeze lasts at most FREEZE_MAX_DAYS (14 by default) from start to end: 400 naming "
    "`ends_at` beyond it."
)


class EnvironmentFreezeMixin:
    """Freezes of an environment: declare, change, lift (services.schedules; the rules are
    policy.check_may_manage_freezes and policy.freeze_length_problem)."""

    def _freeze_of(self, env: Any, freeze_id: str) -> Freeze:
        freeze = Freeze.objects.filter(pk=int(freeze_id), environment=env).first()
        if freeze is None:
            raise NotFound("no such freeze of this environment")
        return freeze

    @extend_schema(
        parameters=[_NAME, IDEMPOTENCY_KEY],
        request=FreezeCreateSerializer,
        responses={201: FreezeSerializer},
        description="Declare a freeze (blackout): no normal deploy may begin inside it. " + _WHO,
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def freezes(self, request: Request, name: str) -> Response:
        env = self.get_object()  # type: ignore[attr-defined]  # 404 outside the caller's scope
        payload = FreezeCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        freeze = schedules.freeze_declare(
            actor=request.user, environment=env, **payload.validated_data
        )
        return Response(FreezeSerializer(freeze).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[_NAME, _FREEZE_ID],
        request=FreezeUpdateSerializer,
        responses={200: FreezeSerializer},
        description="Change a freeze's start, end or reason (audited as freeze.update). " + _WHO,
    )
    @action(
        detail=True,
        methods=["patch"],
        url_path=r"freezes/(?P<freeze_id>[0-9]+)",
        url_name="freeze",
    )
    def freeze_update(self, request: Request, name: str, freeze_id: str) -> Response:
        env = self.get_object()  # type: ignore[attr-defined]
        freeze = self._freeze_of(env, freeze_id)
        payload = FreezeUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        updated = schedules.freeze_update(
            actor=request.user, freeze_id=freeze.pk, **payload.validated_data
        )
        return Response(FreezeSerializer(updated).data)

    @extend_schema(
        parameters=[_NAME, _FREEZE_ID],
        request=FreezeLiftSerializer,
        responses={200: FreezeLiftedSerializer},
        description=(
            "Lift a freeze, saying why (audited as freeze.lift): one in force ends now "
            "(`early`), one not started is withdrawn; 409 for one that is over. " + _WHO
        ),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"freezes/(?P<freeze_id>[0-9]+)/lift",
        url_name="freeze-lift",
    )
    def freeze_lift(self, request: Request, name: str, freeze_id: str) -> Response:
        env = self.get_object()  # type: ignore[attr-defined]
        freeze = self._freeze_of(env, freeze_id)
        payload = FreezeLiftSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        kept = schedules.freeze_lift(
            actor=request.user, freeze_id=freeze.pk, reason=payload.validated_data["reason"]
        )
        return Response(
            {"withdrawn": kept is None, "freeze": FreezeSerializer(kept).data if kept else None}
        )
