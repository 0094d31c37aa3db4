"""POST /api/v1/webhooks/github/: GitHub's signed deliveries, answered fast."""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.models import DeliveryStatus
from deployments.services import webhooks

from .parsers import RequestTooLarge, StrictJSONParser

_DELIVERY_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_EVENT_RE = re.compile(r"^[a-z_]{1,64}$")


class WebhookAckSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    delivery = serializers.CharField()
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    outcome = serializers.CharField(allow_blank=True)


class SignatureRequired(exceptions.APIException):
    """401: the delivery is not signed with GITHUB_WEBHOOK_SECRET (GitHub signs, it does
    not log in, so no authenticator is involved)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "X-Hub-Signature-256 is missing or wrong"
    default_code = "bad_signature"


class WebhookNotConfigured(SignatureRequired):
    """401 (not 5xx: nothing is broken, no delivery can be verified) naming the setting."""

    default_detail = "GitHub webhooks are not configured: set GITHUB_WEBHOOK_SECRET on the portal"


def _header(request: Request, name: str) -> str:
    return str(request.META.get(name, ""))


class GitHubWebhookView(APIView):
    """GitHub webhook: `push` to the infrastructure branch files and deploys dev tickets,
    `pull_request` attaches PR metadata to tickets for its head commit."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="webhooks_github",
        auth=[],
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                "X-Hub-Signature-256",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description='"sha256=" + hex HMAC-SHA256 of the raw body with '
                "GITHUB_WEBHOOK_SECRET.",
            ),
            OpenApiParameter(
                "X-GitHub-Event",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="push, pull_request, ping, ...",
            ),
            OpenApiParameter(
                "X-GitHub-Delivery",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="The delivery's id: a redelivery with the same id is not "
                "processed again.",
            ),
        ],
        responses={
            200: OpenApiResponse(WebhookAckSerializer, "A redelivery: already recorded."),
            202: OpenApiResponse(
                WebhookAckSerializer, "Recorded; queued for the worker or ignored (why)."
            ),
            # 400, 401 (missing or bad X-Hub-Signature-256, or GITHUB_WEBHOOK_SECRET
            # unset), 413 and 415 come with the shared Error schema from
            # deployments.api.schema.add_error_responses.
        },
        description=(
            "Signed GitHub deliveries (content type application/json). 401 when "
            "X-Hub-Signature-256 is missing or does not match the body, and when "
            "GITHUB_WEBHOOK_SECRET is unset (the detail says so). A push to the "
            "infrastructure branch files a ticket in each deploy_on_merge environment (dev), "
            "which deploys itself; pull_request events attach the PR to tickets for its head "
            "commit; everything else is acknowledged and ignored with the reason recorded."
        ),
    )
    def post(self, request: Request) -> Response:
        secret: str = settings.GITHUB_WEBHOOK_SECRET
        if not secret:
            raise WebhookNotConfigured()
        limit: int = settings.API_JSON_MAX_BYTES
        declared = _header(request, "CONTENT_LENGTH")
        if declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body is over the {limit}-byte limit")
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(f"request body is over the {limit}-byte limit")
        signature = _header(request, "HTTP_X_HUB_SIGNATURE_256")
        if not signature:
            raise SignatureRequired("X-Hub-Signature-256 is missing: the delivery is unsigned")
        if not webhooks.signature_valid(secret, body, signature):
            raise SignatureRequired(
                "X-Hub-Signature-256 does not match the body: wrong GITHUB_WEBHOOK_SECRET "
                "or a modified delivery"
            )
        event = _header(request, "HTTP_X_GITHUB_EVENT")
        delivery_id = _header(request, "HTTP_X_GITHUB_DELIVERY")
        if not _EVENT_RE.match(event):
            raise exceptions.ValidationError({"X-GitHub-Event": ["missing or not an event name"]})
        if not _DELIVERY_RE.match(delivery_id):
            raise exceptions.ValidationError(
                {"X-GitHub-Delivery": ["missing or not a delivery id (letters, digits, -)"]}
            )
        content_type = _header(request, "CONTENT_TYPE").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(
                content_type or "(none)",
                detail="configure the webhook with content type application/json",
            )
        payload = StrictJSONParser().parse(io.BytesIO(body))
        delivery, created = webhooks.webhook_receive(
            delivery_id=delivery_id, event=event, payload=payload
        )
        if created:
            detail = "accepted" if delivery.status == DeliveryStatus.QUEUED else "ignored"
        elif delivery.status == DeliveryStatus.QUEUED:
            detail = "already received, not processed yet or failed: sent to the worker again"
        else:
            detail = "already processed: this delivery was received before"
        answer = {
            "detail": detail,
            "delivery": delivery.delivery_id,
            "event": delivery.event,
            "status": delivery.status,
            "outcome": delivery.outcome,
        }
        return Response(answer, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)
