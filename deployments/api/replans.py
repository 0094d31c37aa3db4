"""``POST /api/v1/tickets/{id}/replan-reschedule/`` (a mixin of TicketViewSet): re-plan a
scheduled ticket whose plan went stale and keep its slot (services.replans)."""

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
from deployments.services import replans

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class ReplanRescheduleSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, trim_whitespace=True
    )


class ReplanActionsMixin:
    @extend_schema(
        operation_id="tickets_replan_reschedule",
        parameters=[_ID],
        request=ReplanRescheduleSerializer,
        responses={200: TicketDetailSerializer},
        description=(
            "Re-plan a scheduled ticket (typically one whose plan went stale: "
            "`plan_stale`) and keep its slot: the new plan voids the approvals and is "
            "approved as any plan is (a plan with no changes too); once approved the ticket "
            "is scheduled again for the same instant if that is still allowed, else the "
            "people who scheduled it are told why not. 403 for someone who may not re-plan; "
            "409 when the ticket is not scheduled or a run is in progress."
        ),
    )
    @action(detail=True, methods=["post"], url_path="replan-reschedule")
    def replan_reschedule(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = ReplanRescheduleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        replans.ticket_replan_reschedule(
            ticket_id=ticket.pk, actor=request.user, reason=payload.validated_data["reason"]
        )
        fresh = selectors.ticket_get(request.user, ticket.pk)
        return Response(TicketDetailSerializer(fresh, context={"request": request}).data)
