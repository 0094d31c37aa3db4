"""Scheduling a ticket's apply on the API: schedule and unschedule (added to TicketViewSet)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors
from deployments.api.shapes.tickets import TicketDetailSerializer
from deployments.services import schedules

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


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
