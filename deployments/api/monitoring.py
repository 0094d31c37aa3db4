"""Monitoring verbs of the ticket API (a mixin of TicketViewSet): checklist sign-off,
alarm acknowledgement and completion (SPEC §5)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors
from deployments.api.shapes.monitoring import ChecklistItemSerializer
from deployments.api.shapes.tickets import TicketDetailSerializer
from deployments.lib import validation
from deployments.services import monitoring as service


class NoteSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=validation.COMMENT_MAX,
        trim_whitespace=False,
    )


_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_ITEM = OpenApiParameter(
    "item", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[a-z0-9][a-z0-9_-]{0,63}$"
)


class MonitoringActionsMixin:
    """``POST /tickets/{id}/checklist/{item}/``, ``/monitoring/acknowledge/``, ``/complete/``."""

    @extend_schema(
        operation_id="tickets_checklist_sign",
        parameters=[_ID, _ITEM],
        request=NoteSerializer,
        responses={200: ChecklistItemSerializer},
        description=(
            "Operations signs a post-deployment checklist item off with a note. 403 unless "
            "the caller is in operations; 404 for an unknown item or a ticket outside the "
            "caller's scope; 409 when the ticket is not monitoring or the item is signed."
        ),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"checklist/(?P<item>[a-z0-9][a-z0-9_-]{0,63})",
        url_name="checklist-sign",
    )
    def checklist_sign(self, request: Request, pk: str, item: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = NoteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        signed = service.checklist_sign(
            ticket_id=ticket.pk, key=item, actor=request.user, note=payload.validated_data["note"]
        )
        return Response(ChecklistItemSerializer(signed).data)

    @extend_schema(
        operation_id="tickets_monitoring_acknowledge",
        parameters=[_ID],
        request=NoteSerializer,
        responses={200: TicketDetailSerializer},
        description=(
            "Operations acknowledges an alarm of the monitoring period once every probe "
            "passes again, with a note (required), instead of rolling back. 403 unless in "
            "operations; 409 when no alarm stands or a probe still fails."
        ),
    )
    @action(detail=True, methods=["post"], url_path="monitoring/acknowledge")
    def monitoring_acknowledge(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = NoteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        service.alarm_acknowledge(
            ticket_id=ticket.pk, actor=request.user, note=payload.validated_data["note"]
        )
        return self._detail(ticket)  # type: ignore[attr-defined]

    @extend_schema(
        operation_id="tickets_complete",
        parameters=[_ID],
        request=None,
        responses={200: TicketDetailSerializer},
        description=(
            "Operations completes a monitored ticket. 409 names every reason it may not yet: "
            "the monitoring period still runs (until when), checklist items are open (which), "
            "an alarm fired and is not acknowledged."
        ),
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        service.ticket_complete(ticket_id=ticket.pk, actor=request.user)
        return self._detail(ticket)  # type: ignore[attr-defined]
