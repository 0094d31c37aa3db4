"""``GET /api/v1/notifications/`` and ``POST /api/v1/notifications/{id}/retry/``: the
notification log for Operations and leads (the same rows as the /notifications/ page)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import policy, selectors, services
from notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    recipient: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Notification
        fields = [
            "id",
            "event",
            "channel",
            "recipient",
            "via_role",
            "ticket",
            "subject",
            "url",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


FILTERS = [
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=list(Notification.Status.values),
        description="only rows with this status (e.g. failed)",
    ),
    OpenApiParameter("event", OpenApiTypes.STR, description="only this event, e.g. deploy.failed"),
    OpenApiParameter("channel", OpenApiTypes.STR, description="email, slack or sns"),
]


class NotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Notification]):
    """What the portal told whom, newest first (Operations and leads; 403 for others)."""

    serializer_class = NotificationSerializer
    lookup_value_regex = "[0-9]+"

    def _check(self) -> None:
        user = self.request.user
        policy.check_may_see_notification_log(
            selectors.user_roles(user), superuser=bool(getattr(user, "is_superuser", False))
        )

    def get_queryset(self) -> QuerySet[Notification]:
        params = self.request.query_params
        status = params.get("status", "")
        # The schema's enum has no empty value: ?status= is bad input, not "any" (ST201).
        if "status" in params and status not in Notification.Status.values:
            raise serializers.ValidationError(
                {"status": [f"status must be one of {', '.join(Notification.Status.values)}"]}
            )
        return selectors.notifications_visible_to(
            self.request.user,
            status=status,
            event=params.get("event", "")[:64],
            channel=params.get("channel", "")[:32],
        )

    @extend_schema(parameters=FILTERS, responses={200: NotificationSerializer(many=True)})
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._check()
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: NotificationSerializer},
        description=(
            "Send a failed notification again with a fresh set of attempts (audited as "
            "notification.retry). 403 unless Operations or a lead; 404 for a row about a "
            "ticket outside the caller's scope; 409 when the row is not failed."
        ),
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        self._check()
        if not selectors.notifications_visible_to(request.user).filter(pk=int(pk)).exists():
            raise NotFound("no such notification")
        row = services.notices.notification_retry(notification_id=int(pk), actor=request.user)
        return Response(NotificationSerializer(row).data)
