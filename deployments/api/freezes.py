"""Freezes of an environment on the API: declare, change, lift (added to EnvironmentViewSet;
the rules are policy.check_may_manage_freezes and policy.freeze_length_problem, asked by
services.schedules.freeze_check: the input checks live there, once)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.shapes.environments import FreezeSerializer
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.api.support.inputs import NO_NUL
from deployments.models import Freeze
from deployments.services import schedules

_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[A-Za-z0-9_-]{1,32}$"
)


class FreezeCreateSerializer(serializers.Serializer[Any]):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=200, validators=[NO_NUL])


class FreezeUpdateSerializer(serializers.Serializer[Any]):
    """Any of the three; what is left out stays."""

    starts_at = serializers.DateTimeField(required=False)
    ends_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(max_length=200, validators=[NO_NUL], required=False)


class FreezeLiftSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=200, validators=[NO_NUL], help_text="Why the freeze is lifted (audited)."
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
