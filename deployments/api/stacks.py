"""Stacks on the API (docs/stacks.md): GET /api/v1/stacks/ and /api/v1/stacks/{name}/ (its
environments, the last deployment in each, its dependencies); PUT /api/v1/stacks/{name}/
declares or replaces one, idempotent by nature (DevOps Leads; a dependency cycle is a 400
naming it)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import policy, selectors
from deployments.api.evidence import ERROR_REF
from deployments.api.shapes.stacks import (
    StackDetailSerializer,
    StackEnvironmentRuleSerializer,
    StackSerializer,
)
from deployments.services import stacks as stacks_service

_NAME_RE = "[a-z0-9][a-z0-9_-]{0,63}"
_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{_NAME_RE}$")
_TEXT = {"required": False, "allow_blank": True, "default": ""}


class StackInputSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(f"^{_NAME_RE}$", max_length=64)
    description = serializers.CharField(max_length=200, **_TEXT)  # type: ignore[arg-type]
    repository = serializers.CharField(
        max_length=500,
        help_text="Git URL or path, without credentials; empty: INFRA_REPO.",
        **_TEXT,  # type: ignore[arg-type]
    )
    repository_credentials = serializers.CharField(
        max_length=64,
        help_text="Name of the environment variable holding user:token (never the value).",
        **_TEXT,  # type: ignore[arg-type]
    )
    webhook_secret_env = serializers.CharField(
        max_length=64,
        help_text="Name of the environment variable holding the repository's webhook secret.",
        **_TEXT,  # type: ignore[arg-type]
    )
    web_url = serializers.URLField(max_length=500, **_TEXT)  # type: ignore[arg-type]
    branch = serializers.CharField(max_length=200, **_TEXT)  # type: ignore[arg-type]
    root_dir = serializers.CharField(max_length=255, **_TEXT)  # type: ignore[arg-type]
    var_file_pattern = serializers.CharField(max_length=255, **_TEXT)  # type: ignore[arg-type]
    policy_dir = serializers.CharField(
        max_length=255,
        help_text="A folder of Rego policies of the stack's own, repository-relative (e.g. "
        "stacks/app/policies), evaluated on top of the environment's; empty: none.",
        **_TEXT,  # type: ignore[arg-type]
    )
    backend_config = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list, max_length=50
    )
    require_lock_file = serializers.BooleanField(required=False, default=False)
    environment_rules = serializers.DictField(
        child=StackEnvironmentRuleSerializer(),
        required=False,
        default=dict,
    )
    depends_on = serializers.ListField(
        child=serializers.RegexField(f"^{_NAME_RE}$", max_length=64),
        required=False,
        default=list,
        max_length=100,
    )


class StackViewSet(viewsets.ViewSet):
    """The Terraform roots the portal governs."""

    lookup_field = "name"
    lookup_value_regex = _NAME_RE

    @extend_schema(responses=StackSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(StackSerializer(selectors.stacks_list(request.user), many=True).data)

    @extend_schema(
        parameters=[_NAME],
        responses={200: StackDetailSerializer, 404: OpenApiResponse(ERROR_REF)},
    )
    def retrieve(self, request: Request, name: str) -> Response:
        stack = selectors.stack_get(name, request.user)
        if stack is None:
            raise Http404("No such stack")
        (row,) = selectors.stack_rows(request.user, [stack])
        return Response(
            StackDetailSerializer(stack, context={"environments": row.environments}).data
        )

    @extend_schema(
        parameters=[_NAME],
        request=StackInputSerializer,
        responses={
            200: StackDetailSerializer,
            201: StackDetailSerializer,
            400: OpenApiResponse(ERROR_REF, description="Bad input, or a dependency cycle."),
            403: OpenApiResponse(ERROR_REF, description="Only DevOps Leads declare stacks."),
        },
        description=(
            "Declare the stack (201) or replace its settings and dependencies (200); the name "
            "in the path wins over one in the body. Audited. 400 naming the cycle when its "
            "dependencies would lead back to it; nothing is written."
        ),
    )
    def update(self, request: Request, name: str) -> Response:
        policy.stacks.check_may_manage_stacks(
            selectors.user_roles(request.user), superuser=bool(request.user.is_superuser)
        )
        body = request.data if isinstance(request.data, dict) else {}
        payload = StackInputSerializer(data={**body, "name": name})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        existed = selectors.stack_get(name) is not None
        stack = stacks_service.stack_save(
            actor=request.user,
            data=stacks_service.StackInput(
                **{
                    **data,
                    "backend_config": tuple(data["backend_config"]),
                    "depends_on": tuple(data["depends_on"]),
                }
            ),
        )
        stack = selectors.stack_get(stack.name) or stack
        (row,) = selectors.stack_rows(request.user, [stack])
        return Response(
            StackDetailSerializer(stack, context={"environments": row.environments}).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )
