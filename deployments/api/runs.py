"""Terraform runs on the API, with their full (redacted) log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors
from deployments.api.shapes.runs import RunSerializer
from deployments.models import TerraformRun

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


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
