"""Deployment history on the API: GET /api/v1/deployments/ (newest first, filtered)."""

from __future__ import annotations

import re
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.api.evidence import ERROR_REF
from deployments.lib import validation
from deployments.models import Deployment, DeploymentOutcome
from deployments.selectors import history as history_selectors
from deployments.services import InputError

# --- me/queue ------------------------------------------------------------------------


class DeploymentApproverSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(source="approver.username")
    role = serializers.CharField()
    approved_at = serializers.DateTimeField(source="created_at")


class DeploymentSerializer(serializers.ModelSerializer[Deployment]):
    environment = serializers.CharField(source="environment.name")
    stack = serializers.CharField(source="stack.name", help_text="The stack deployed.")
    ticket = serializers.IntegerField(source="ticket_id")
    ticket_title = serializers.CharField(source="ticket.title")
    ticket_url = serializers.SerializerMethodField()
    deployed_by = serializers.SerializerMethodField()
    approvers = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(allow_null=True)
    rolled_back = serializers.SerializerMethodField()
    apply_run = serializers.SerializerMethodField()
    plan = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "environment",
            "stack",
            "ticket",
            "ticket_title",
            "ticket_url",
            "change_type",
            "commit_sha",
            "var_file",
            "var_file_sha256",
            "deployed_by",
            "approvers",
            "started_at",
            "finished_at",
            "duration_seconds",
            "outcome",
            "rolled_back",
            "rolled_back_at",
            "monitoring_failed_at",
            "state_after",
            "apply_run",
            "plan",
        ]

    def get_ticket_url(self, d: Deployment) -> str:
        return reverse("api:ticket-detail", args=[d.ticket_id])

    def get_deployed_by(self, d: Deployment) -> str | None:
        return d.deployed_by.get_username() if d.deployed_by else None

    @extend_schema_field(DeploymentApproverSerializer(many=True))
    def get_approvers(self, d: Deployment) -> list[dict[str, Any]]:
        """The approvals of the very plan this deployment applied."""
        return list(DeploymentApproverSerializer(history_selectors.approvers_of(d), many=True).data)

    def get_rolled_back(self, d: Deployment) -> bool:
        return d.rolled_back_at is not None

    @extend_schema_field({"type": "string", "description": "The apply run's API path."})
    def get_apply_run(self, d: Deployment) -> str:
        return reverse("api:run-detail", args=[d.run_id])

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "id": {"type": "integer"},
                "url": {"type": "string"},
                "plan_sha256": {"type": "string"},
            },
        }
    )
    def get_plan(self, d: Deployment) -> dict[str, Any] | None:
        """The exact plan applied: its run (whose log and summary the API serves) and the
        SHA-256 of the saved plan file that was applied."""
        plan_id = d.run.plan_id
        if plan_id is None:
            return None
        return {
            "id": plan_id,
            "url": reverse("api:run-detail", args=[plan_id]),
            "plan_sha256": d.plan_sha256 or d.run.plan_sha256,
        }


class DeploymentHistoryView(generics.ListAPIView[Deployment]):
    serializer_class = DeploymentSerializer

    @extend_schema(
        operation_id="deployments_list",
        responses={
            200: DeploymentSerializer(many=True),
            404: OpenApiResponse(
                ERROR_REF,
                description="The environment is unknown or its history is not yours to see.",
            ),
        },
        parameters=[
            OpenApiParameter(
                "environment",
                OpenApiTypes.STR,
                description="An environment name; 404 when unknown or not visible to you.",
            ),
            OpenApiParameter(
                "stack",
                OpenApiTypes.STR,
                description="A stack name: only its deployments; empty: every stack.",
                pattern=r"^[a-z0-9_-]{0,64}$",
            ),
            OpenApiParameter("outcome", OpenApiTypes.STR, enum=list(DeploymentOutcome.values)),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                description="Only deployments finished at or after this ISO-8601 instant.",
            ),
        ],
        description=(
            "Deployment history, newest first: one entry per finished apply with its commit, "
            "ticket, approvers (of the exact plan applied), times, duration, outcome, "
            "rollback, and a link to the plan run with the plan's SHA-256. Only environments "
            "whose every ticket you see (prod: operations and leads)."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        params = self.request.query_params
        try:
            name = validation.clean_text(params.get("environment", ""), "environment", 64)
        except InputError as exc:
            raise ValidationError({"environment": [exc.message]}) from None
        environment = None
        if name:
            environment = history_selectors.history_environment(self.request.user, name)
        outcome = params.get("outcome", "")
        # The schema's enum has no empty value: ?outcome= is bad input, not "any".
        if "outcome" in params and outcome not in DeploymentOutcome.values:
            raise ValidationError(
                {"outcome": [f"outcome must be one of {', '.join(DeploymentOutcome.values)}"]}
            )
        since = None
        if "since" in params:
            try:
                since = validation.parse_instant(params.get("since", ""), "since")
            except InputError as exc:
                raise ValidationError({"since": [f"since {exc.message}"]}) from None
        stack = params.get("stack", "")
        if stack and not re.fullmatch(r"[a-z0-9_-]{1,64}", stack):
            raise ValidationError({"stack": ["stack must be a stack name (a-z, 0-9, - and _)"]})
        return history_selectors.deployment_history(
            self.request.user, environment=environment, outcome=outcome, since=since, stack=stack
        )
