"""Rego policies in the API (docs/policies.md): overriding a soft failure of a ticket's plan
(a mixin of TicketViewSet) and a dry run of the policies on a stored plan run."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import policy, selectors
from deployments.api.shapes.policies import DryRunSerializer, PolicyOverrideSerializer
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.choices import RunKind, RunStatus
from deployments.services import policies as service

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class PolicyOverrideInSerializer(serializers.Serializer[Any]):
    policy = serializers.CharField(max_length=200, help_text="The policy (its Rego package).")
    plan_sha256 = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="The SHA-256 of the plan reviewed: the current plan's."
    )
    reason = serializers.CharField(max_length=2000, help_text="Why it may go ahead anyway.")


class PolicyOverrideActionsMixin:
    """``POST /tickets/{id}/policy-overrides/``."""

    @extend_schema(
        operation_id="tickets_policy_override",
        parameters=[_ID, IDEMPOTENCY_KEY],
        request=PolicyOverrideInSerializer,
        responses={201: PolicyOverrideSerializer},
        description=(
            "Override a soft failure of the ticket's current plan, with a reason. Only the "
            "role the policy names may (default DevOps Lead), never the ticket's author "
            "(403). The override is bound to plan_sha256: 409 when it is not the current "
            "plan's, when the policy did not fail at the soft level, or it is already "
            "overridden. A new plan voids every override, as it voids approvals. Where the "
            "environment asks for step-up (prod), a browser session must have signed in "
            "recently, as for approving (403 naming /accounts/reauthenticate/)."
        ),
    )
    @action(detail=True, methods=["post"], url_path="policy-overrides", url_name="policy-override")
    @idempotent
    def policy_override(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = PolicyOverrideInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        override = service.policy_override(
            ticket_id=ticket.pk,
            policy_name=data["policy"],
            plan_sha256=data["plan_sha256"],
            reason=data["reason"],
            actor=request.user,
        )
        return Response(PolicyOverrideSerializer(override).data, status=status.HTTP_201_CREATED)


class EvaluateInSerializer(serializers.Serializer[Any]):
    run = serializers.IntegerField(min_value=1, help_text="A successful plan run you may see.")


class PolicyEvaluateView(APIView):
    """``POST /api/v1/policies/evaluate/``: evaluate the policies again on a stored plan."""

    @extend_schema(
        operation_id="policies_evaluate",
        request=EvaluateInSerializer,
        responses={
            200: DryRunSerializer,
            404: OpenApiResponse(description="No such run, or not visible to the caller."),
        },
        description=(
            "A dry run: the plan run's policies (its commit's policy folders, the "
            "environment's and the stack's own, and the portal's as they are now) "
            "evaluated again on its stored, masked plan document. Nothing is recorded. "
            "404 for a run outside the caller's scope; 409 for a run that is not a "
            "successful plan or kept no plan document."
        ),
    )
    def post(self, request: Request) -> Response:
        payload = EvaluateInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = selectors.run_get(request.user, payload.validated_data["run"])
        if run.kind != RunKind.PLAN or run.status != RunStatus.SUCCEEDED:
            raise policy.PolicyError(f"run {run.pk} is not a successful plan")
        evaluated, seconds = service.policy_dry_run(run)
        findings = [
            policy.plan_policies.PolicyFinding(
                policy=e.planned.policy,
                source=e.planned.source,
                level=e.level,
                outcome=e.outcome,
                messages=e.messages,
                override_role=e.planned.override_role,
            )
            for e in evaluated
        ]
        out = {
            "plan_run": run.pk,
            "status": policy.plan_policies.policy_status(findings),
            "seconds": round(seconds, 3),
            "results": [
                {
                    "policy": e.planned.policy,
                    "path": e.planned.path,
                    "folder": e.planned.folder,
                    "source": e.planned.source,
                    "version_sha256": e.planned.version_sha256,
                    "level": e.level,
                    "outcome": e.outcome,
                    "messages": list(e.messages),
                    "warnings": list(e.warnings),
                }
                for e in evaluated
            ],
        }
        return Response(DryRunSerializer(out).data)
