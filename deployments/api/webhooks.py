"""POST /api/v1/webhooks/github/: GitHub's signed deliveries, answered fast."""

from __future__ import annotations

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

from deployments.api.support import webhook_body
from deployments.api.support.parsers import RequestTooLarge, StrictJSONParser
from deployments.lib import validation
from deployments.models import DeliveryStatus
from deployments.services import stack_webhooks, webhooks

_DELIVERY_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# GitHub's event names: projects_v2_item, projects_v2_status_update, ... (digits too).
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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
    # The body is read by hand (streamed, hashed, parsed for a few fields); this only
    # tells the schema that it is JSON.
    parser_classes = [StrictJSONParser]

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
                description="push, pull_request, ping, projects_v2_item, ... (every event is "
                "recorded; those the portal does not act on are ignored with the reason).",
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
            # deployments.api.support.schema.add_error_responses.
        },
        description=(
            "Signed GitHub deliveries (content type application/json, up to "
            "GITHUB_WEBHOOK_MAX_BYTES, default 25 MiB: GitHub's own cap). 401 when "
            "X-Hub-Signature-256 is missing or does not match the body, and when "
            "GITHUB_WEBHOOK_SECRET is unset (the detail says so); nothing is recorded. A "
            "signed delivery the portal cannot read is refused and recorded with the reason "
            "(status refused): 400 (not a JSON object, a missing or bad X-GitHub-Event or "
            "X-GitHub-Delivery), 413 (over the limit), 415 (not application/json). Only "
            "deliveries from GITHUB_REPOSITORY (by name and GITHUB_REPOSITORY_ID) are acted "
            "on: a push to the infrastructure branch files a ticket in each deploy_on_merge "
            "environment (dev), which deploys itself; pull_request events attach the PR to "
            "tickets for its head commit. Every other event, and every delivery from another "
            "repository, is recorded and ignored (202) with the reason."
        ),
    )
    def post(self, request: Request) -> Response:
        secret: str = settings.GITHUB_WEBHOOK_SECRET
        # Stacks' repositories with secrets of their own (docs/stacks.md): (owner/name, value).
        repositories = stack_webhooks.repository_secrets()
        if not secret and not repositories:
            raise WebhookNotConfigured()
        signature = _header(request, "HTTP_X_HUB_SIGNATURE_256")
        if not signature:
            raise SignatureRequired("X-Hub-Signature-256 is missing: the delivery is unsigned")
        limit: int = settings.GITHUB_WEBHOOK_MAX_BYTES
        # Past the limit the body is only hashed, to tell a signed delivery (recorded as
        # refused) from noise; past twice the limit it is not read at all.
        ceiling = 2 * limit
        declared = _header(request, "CONTENT_LENGTH")
        if declared.isdigit() and int(declared) > ceiling:
            raise RequestTooLarge(
                f"request body is over the {limit}-byte limit (GITHUB_WEBHOOK_MAX_BYTES)"
            )
        with webhook_body.receive(
            request._request,
            secret=secret,
            signature=signature,
            limit=limit,
            ceiling=ceiling,
            other_secrets=tuple(value for _name, value in repositories),
        ) as body:
            if not body.complete:
                raise RequestTooLarge(
                    f"request body is over the {limit}-byte limit (GITHUB_WEBHOOK_MAX_BYTES)"
                )
            if not body.signed:
                raise SignatureRequired(
                    "X-Hub-Signature-256 does not match the body: wrong GITHUB_WEBHOOK_SECRET "
                    "or a modified delivery"
                )
            payload = self._read(request, body, limit)
            signed_by = repositories[body.signed_by - 1][0] if body.signed_by > 0 else ""
        # A repository's own secret vouches for that repository only.
        problem = stack_webhooks.secret_problem(payload, signed_by)
        if problem:
            raise SignatureRequired(problem)
        event = _header(request, "HTTP_X_GITHUB_EVENT")
        delivery_id = _header(request, "HTTP_X_GITHUB_DELIVERY")
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

    def _read(self, request: Request, body: webhook_body.Body, limit: int) -> dict[str, Any]:
        """The fields the portal uses, or the refusal (4xx) of a signed delivery it cannot
        read, recorded with the reason so that it shows among the deliveries."""
        event = _header(request, "HTTP_X_GITHUB_EVENT")
        delivery_id = _header(request, "HTTP_X_GITHUB_DELIVERY")
        content_type = _header(request, "CONTENT_TYPE").split(";")[0].strip().lower()
        refusal: exceptions.APIException | None = None
        if body.size > limit:
            refusal = RequestTooLarge(
                f"request body is {body.size} bytes, over the {limit}-byte limit "
                "(GITHUB_WEBHOOK_MAX_BYTES)"
            )
        elif not _EVENT_RE.match(event):
            refusal = exceptions.ValidationError(
                {"X-GitHub-Event": ["missing or not an event name"]}
            )
        elif not _DELIVERY_RE.match(delivery_id):
            refusal = exceptions.ValidationError(
                {"X-GitHub-Delivery": ["missing or not a delivery id (letters, digits, -)"]}
            )
        elif content_type != "application/json":
            refusal = exceptions.UnsupportedMediaType(
                content_type or "(none)",
                detail=f"content type {content_type or '(none)'}: configure the webhook with "
                "content type application/json",
            )
        else:
            try:
                return webhook_body.read_fields(body.file, max_depth=validation.JSON_MAX_DEPTH)
            except webhook_body.PayloadError as exc:
                refusal = exceptions.ParseError(str(exc))
        reason = _reason(refusal)
        webhooks.webhook_refuse(
            delivery_id=delivery_id if _DELIVERY_RE.match(delivery_id) else "",
            event=event,
            reason=f"HTTP {refusal.status_code}: {reason}",
        )
        raise refusal


def _reason(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {' '.join(map(str, value))}" for key, value in detail.items())
    if isinstance(exc, exceptions.ParseError):
        return f"malformed request body: {detail}"
    return str(detail)
