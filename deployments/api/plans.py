"""Speculative plans: POST /api/v1/plans/ (a plan only, for a pull request) and reading them."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.shapes.common import PlanSummarySerializer
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.lib import validation
from deployments.models import SpeculativePlan
from deployments.selectors import plans as plan_selectors
from deployments.services.plans import speculative_plan_create

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_ENV_RE = r"^[A-Za-z0-9_-]{1,32}$"


class SpeculativePlanCreateSerializer(serializers.Serializer[Any]):
    environment = serializers.CharField(
        min_length=1,
        max_length=32,
        validators=[RegexValidator(_ENV_RE, "an environment name")],
        help_text="The environment whose var-file, state and plan credentials are used.",
    )
    commit_sha = serializers.RegexField(
        r"^[0-9a-fA-F]{40}$",
        error_messages={"invalid": "commit_sha must be a full 40-character hex SHA"},
        help_text="40-hex commit of the infrastructure repository (a pull request's head).",
    )
    pull_request_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=validation.URL_MAX
    )


class SpeculativePlanBriefSerializer(serializers.ModelSerializer[SpeculativePlan]):
    environment: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    url = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()

    class Meta:
        model = SpeculativePlan
        fields = [
            "id",
            "url",
            "environment",
            "commit_sha",
            "pull_request_url",
            "requested_by",
            "status",
            "exit_code",
            "summary",
            "has_changes",
            "error",
            "terraform_version",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_url(self, plan: SpeculativePlan) -> str:
        return reverse("api:speculative-plan-detail", args=[plan.pk])

    @extend_schema_field(PlanSummarySerializer(allow_null=True))
    def get_summary(self, plan: SpeculativePlan) -> dict[str, Any] | None:
        """What the plan would do: {add, change, destroy, resources} (null until it succeeded)."""
        summary = plan.summary if isinstance(plan.summary, dict) else {}
        if not summary:
            return None
        return {
            "add": summary.get("add", 0),
            "change": summary.get("change", 0),
            "destroy": summary.get("destroy", 0),
            "resources": list(summary.get("resources") or []),
        }


class SpeculativePlanSerializer(SpeculativePlanBriefSerializer):
    class Meta(SpeculativePlanBriefSerializer.Meta):
        fields = [*SpeculativePlanBriefSerializer.Meta.fields, "log"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "environment",
                OpenApiTypes.STR,
                description="An environment name; empty: every environment you see.",
                pattern=r"^([A-Za-z0-9_-]{1,32})?$",
            )
        ],
        description="Speculative plans you may see (those of environments whose tickets you "
        "see, and your own), newest first, without their logs.",
    ),
    retrieve=extend_schema(
        parameters=[_ID],
        description="One speculative plan: status, exit code, summary and its bounded log "
        "(the head and the tail, with a line saying what was dropped between). 404 outside "
        "your scope.",
    ),
)
class SpeculativePlanViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[SpeculativePlan]
):
    """Plans only, of any commit: a pull request's check. Nothing here can be approved or
    applied, and nothing leads from a speculative plan to a ticket."""

    serializer_class = SpeculativePlanBriefSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[SpeculativePlan]:
        environment = self.request.query_params.get("environment", "")
        if environment and not re.fullmatch(_ENV_RE, environment):
            raise ValidationError({"environment": ["environment must be an environment name"]})
        return plan_selectors.speculative_plans_visible_to(
            self.request.user, environment=environment
        )

    def get_object(self) -> SpeculativePlan:
        return plan_selectors.speculative_plan_get(self.request.user, self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(SpeculativePlanSerializer(self.get_object()).data)

    @extend_schema(
        request=SpeculativePlanCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: SpeculativePlanSerializer},
        description=(
            "Queue a speculative plan: `terraform plan` of `commit_sha` with the environment's "
            "var-file, state and read-only plan credentials, on the environment's workers. "
            "For a pull request's check: no ticket is filed, nothing can approve or apply it, "
            "and its plan file is not kept. 202 with the queued plan (poll its `url`); 400 an "
            "unknown environment or a commit not in the repository; 403 unless you may file "
            "tickets in the environment. `Idempotency-Key` honoured."
        ),
    )
    @idempotent
    def create(self, request: Request) -> Response:
        payload = SpeculativePlanCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        plan = speculative_plan_create(actor=request.user, **payload.validated_data)
        return Response(SpeculativePlanSerializer(plan).data, status=status.HTTP_202_ACCEPTED)
