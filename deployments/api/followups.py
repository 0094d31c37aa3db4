"""Follow-up verbs of the ticket API (a mixin of TicketViewSet)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors, services
from deployments.api.shapes.followups import FollowUpSerializer
from deployments.lib import validation

# A review's text: any characters but NUL (PostgreSQL refuses it in text).
_NO_NUL = RegexValidator(r"^[^\x00]*$", "must not contain NUL characters")


def _review_text(name: str, help_text: str) -> serializers.CharField:
    return serializers.CharField(
        max_length=validation.DESCRIPTION_MAX,
        validators=[_NO_NUL],
        help_text=help_text,
        error_messages={
            "required": f"{name} is required",
            "blank": f"{name} must not be empty",
        },
    )


class FollowUpCompleteSerializer(serializers.Serializer[Any]):
    what_happened = _review_text("what_happened", "What happened: the change and its course.")
    impact = _review_text("impact", "Impact on users and systems.")
    root_cause = _review_text("root_cause", "Why the emergency (or the failure) happened.")
    actions = _review_text("actions", "Actions agreed, with owners.")


class FollowUpActionsMixin:
    """``POST /tickets/{id}/follow-ups/{fid}/complete/``: a lead completes a review."""

    @extend_schema(
        operation_id="tickets_follow_ups_complete",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("fid", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        request=FollowUpCompleteSerializer,
        responses={200: FollowUpSerializer},
        description=(
            "Complete a follow-up (post-deployment review or post-mortem) with its review. "
            "400 names the empty fields; 403 unless the caller is a Tech Lead or a DevOps "
            "Lead; 404 for a ticket or follow-up outside the caller's scope; 409 when it is "
            "already completed."
        ),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"follow-ups/(?P<fid>[0-9]+)/complete",
        url_name="follow-up-complete",
    )
    def complete_follow_up(self, request: Request, pk: str, fid: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        follow_up = ticket.follow_ups.filter(pk=int(fid)).first()
        if follow_up is None:
            raise Http404("no such follow-up on this ticket")
        payload = FollowUpCompleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        done = services.follow_up_complete(
            follow_up_id=follow_up.pk, actor=request.user, **payload.validated_data
        )
        return Response(FollowUpSerializer(done).data)
