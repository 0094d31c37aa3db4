"""API: ``GET /api/v1/metrics/``, the DORA metrics and approval waits (docs/metrics.md)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import selectors
from deployments.selectors import metrics


class DurationFiguresSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(help_text="How many values the figures are over.")
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class ApprovalWaitSerializer(serializers.Serializer[Any]):
    role = serializers.CharField()
    role_label = serializers.CharField()
    approvals = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class MetricsDaySerializer(serializers.Serializer[Any]):
    date = serializers.DateField(help_text="A UTC calendar day.")
    deployments = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failures = serializers.IntegerField()


class EnvironmentMetricsSerializer(serializers.Serializer[Any]):
    environment = serializers.CharField()
    display_name = serializers.CharField()
    deployments = serializers.IntegerField(help_text="Deployments that finished in the period.")
    succeeded = serializers.IntegerField()
    failures = serializers.IntegerField(
        help_text="Deployments that failed, failed their monitoring or were rolled back."
    )
    deployments_per_day = serializers.FloatField(help_text="Succeeded deployments per day.")
    deployments_per_week = serializers.FloatField()
    change_failure_rate = serializers.FloatField(
        allow_null=True, help_text="failures / deployments; null without deployments."
    )
    lead_time = DurationFiguresSerializer(help_text="Ticket filed → deployment finished.")
    time_to_restore = DurationFiguresSerializer(
        help_text="Failed deployment finished → next good deployment finished."
    )
    unrestored = serializers.IntegerField(help_text="Failures with no good deployment since.")
    approval_waits = ApprovalWaitSerializer(many=True)
    awaiting_approval_now = serializers.IntegerField()
    oldest_waiting_since = serializers.DateTimeField(allow_null=True)
    daily = MetricsDaySerializer(many=True)


class MetricsSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    generated_at = serializers.DateTimeField()
    stack = serializers.CharField(
        allow_null=True, help_text="The stack the figures are of; null: every stack."
    )
    environments = EnvironmentMetricsSerializer(many=True)


class MetricsView(APIView):
    """DORA metrics per environment the caller may see (prod only for those who see prod)."""

    @extend_schema(
        operation_id="metrics_retrieve",
        parameters=[
            OpenApiParameter(
                "days",
                OpenApiTypes.INT,
                description="The period: the last N UTC days, today included (1 to 365; "
                "default 30).",
            ),
            OpenApiParameter(
                "environment",
                OpenApiTypes.STR,
                description="One environment's name; absent or empty: every environment "
                "you may see.",
                pattern=r"^[A-Za-z0-9_-]{0,32}$",
            ),
            OpenApiParameter(
                "stack",
                OpenApiTypes.STR,
                description="One stack's name (its deployments, approvals and waiting "
                "tickets only); absent or empty: every stack.",
                pattern=r"^[A-Za-z0-9_-]{0,64}$",
            ),
        ],
        responses={
            200: MetricsSerializer,
            400: OpenApiResponse(
                {"$ref": "#/components/schemas/Error"},
                description="A bad days, environment or stack.",
            ),
        },
        description=(
            "Deployment frequency, lead time for changes, change failure rate, time to "
            "restore and approval wait time per role, per environment, with a daily series "
            "for charts. Durations are in seconds; definitions in docs/metrics.md. Cached "
            "for METRICS_CACHE_SECONDS."
        ),
    )
    def get(self, request: Request) -> Response:
        try:
            days = metrics.parse_days(request.query_params.get("days"))
            environments = metrics.choose_environments(
                selectors.environments_viewable_by(request.user),
                request.query_params.get("environment"),
            )
            stack = metrics.choose_stack(request.query_params.get("stack"))
        except metrics.MetricsInputError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(metrics.metrics_for(environments, days, timezone.now(), stack))
