"""Environments on the API: their policy and window, freezes (api.freezes) and drift."""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import policy, selectors
from deployments.api.freezes import EnvironmentFreezeMixin
from deployments.api.shapes.environments import (
    DriftCheckSerializer,
    EnvironmentSerializer,
)
from deployments.models import Environment

_NAME_RE = "[A-Za-z0-9_-]{1,32}"


_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{_NAME_RE}$")


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
        parameters=[
            _NAME,
            OpenApiParameter(
                "stack",
                OpenApiTypes.STR,
                description="A stack name: only its drift reports; empty: every stack's.",
                pattern=r"^[a-z0-9_-]{0,64}$",
            ),
        ],
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
        stack = request.query_params.get("stack", "")
        if stack and not re.fullmatch(r"[a-z0-9_-]{1,64}", stack):
            raise ValidationError({"stack": ["stack must be a stack name (a-z, 0-9, - and _)"]})
        checks = selectors.drift_checks_of(env, stack=stack)
        return Response(DriftCheckSerializer(checks, many=True).data)
