"""CI check results on tickets: POST /api/v1/tickets/{id}/checks/."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors, services

from .check_serializers import CheckCreateSerializer, CheckResultSerializer
from .idempotency import PARAMETER as IDEMPOTENCY_KEY
from .idempotency import idempotent

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class TicketChecksMixin:
    """Adds the `checks` verb to TicketViewSet."""

    @extend_schema(
        parameters=[_ID, IDEMPOTENCY_KEY],
        request=CheckCreateSerializer,
        responses={201: CheckResultSerializer},
        description="Report one CI check result on a ticket. Who may file tickets in the "
        "ticket's environment may report (403 otherwise, 404 outside your scope); repeated "
        "names keep their history, the latest report counts. Environments may require "
        "named checks to have passed before approval (`required_checks`).",
    )
    @action(detail=True, methods=["post"], url_path="checks")
    @idempotent
    def checks(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = CheckCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = services.check_record(
            ticket_id=ticket.pk,
            actor=request.user,
            data=services.CheckInput(**payload.validated_data),
        )
        return Response(CheckResultSerializer(result).data, status=status.HTTP_201_CREATED)
