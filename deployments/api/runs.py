"""Terraform runs on the API, with their (redacted) log: its end, and page by page."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
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

from deployments import selectors
from deployments.api.shapes.runs import LogPageSerializer, RunSerializer
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

    @extend_schema(
        parameters=[
            _ID,
            OpenApiParameter(
                "before",
                {"type": "integer", "minimum": 0},
                description="Character offset the page ends at (default: the log's end). "
                "Page backwards with each answer's `start`.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": selectors.LOG_PAGE_CHARS},
                description=f"Characters per page (at most {selectors.LOG_PAGE_CHARS}).",
            ),
        ],
        responses=LogPageSerializer,
    )
    @action(detail=True, methods=["get"], url_path="log")
    def log(self, request: Request, pk: str | None = None) -> Response:
        """The run's log page by page, from its end: tail first, then ?before=<start>."""
        run = self.get_object()
        before: int | None = None
        limit = selectors.LOG_PAGE_CHARS
        try:
            if request.query_params.get("before") not in (None, ""):
                before = int(request.query_params["before"])
            if request.query_params.get("limit") not in (None, ""):
                limit = int(request.query_params["limit"])
        except ValueError:
            raise ValidationError({"detail": "before and limit must be integers"}) from None
        if (before is not None and before < 0) or not 1 <= limit <= selectors.LOG_PAGE_CHARS:
            raise ValidationError(
                {
                    "detail": "before must be 0 or more and limit from 1 to "
                    f"{selectors.LOG_PAGE_CHARS}"
                }
            )
        page = selectors.run_log_page(run, before=before, limit=limit)
        previous = (
            f"{reverse('api:run-log', args=[run.pk])}?before={page.start}&limit={limit}"
            if page.start > 0
            else None
        )
        return Response(
            LogPageSerializer(
                {
                    "text": page.text,
                    "start": page.start,
                    "end": page.end,
                    "size": page.size,
                    "previous": previous,
                }
            ).data
        )
