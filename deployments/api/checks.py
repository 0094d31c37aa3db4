"""CI check results on tickets: POST /api/v1/tickets/{id}/checks/."""

from __future__ import annotations

from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import selectors, services
from deployments.api.shapes.checks import CheckResultSerializer
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.api.support.inputs import NO_NUL
from deployments.api.support.parsers import StrictJSONParser
from deployments.models import CheckStatus
from deployments.services.checks import CHECK_LOG_MAX, CHECK_SUMMARY_MAX


class CheckCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(
        r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        max_length=64,
        help_text="The check's name: fmt, validate, security_scan, plan or any slug "
        "(stored lowercase). A later report of the same name supersedes the earlier one.",
        error_messages={"invalid": 'name must be a check name: letters, digits, "-" and "_"'},
    )
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    summary = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=CHECK_SUMMARY_MAX,
        validators=[NO_NUL],
    )
    url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        validators=[
            URLValidator(schemes=["http", "https"], message="url must be an http or https URL")
        ],
        help_text="Link to the CI job (http or https only).",
    )
    log = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=CHECK_LOG_MAX,
        trim_whitespace=False,
        validators=[NO_NUL],
        help_text=f"The check's output, at most {CHECK_LOG_MAX} characters; secrets are "
        "redacted before it is stored.",
    )


class CheckUploadSerializer(CheckCreateSerializer):
    """The same report as a multipart form, the log as a file (``curl -F log_file=@out.txt``)."""

    log_file = serializers.FileField(
        required=False,
        help_text=f"The check's output as a UTF-8 text file (instead of `log`), at most "
        f"{CHECK_LOG_MAX} characters; secrets are redacted before it is stored.",
    )


_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class TicketChecksMixin:
    """Adds the `checks` verb to TicketViewSet."""

    @extend_schema(
        parameters=[_ID, IDEMPOTENCY_KEY],
        request={
            "application/json": CheckCreateSerializer,
            "multipart/form-data": CheckUploadSerializer,
        },
        responses={201: CheckResultSerializer},
        description="Report one CI check result on a ticket. Who may file tickets in the "
        "ticket's environment may report (403 otherwise, 404 outside your scope); repeated "
        "names keep their history, the latest report counts. Environments may require "
        "named checks to have passed before approval (`required_checks`). The log may "
        "also come as a file of a multipart form (`log_file`).",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="checks",
        parser_classes=[StrictJSONParser, MultiPartParser],
    )
    @idempotent
    def checks(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        payload = CheckCreateSerializer(data=_with_log_file(request))
        payload.is_valid(raise_exception=True)
        result = services.check_record(
            ticket_id=ticket.pk,
            actor=request.user,
            data=services.CheckInput(**payload.validated_data),
        )
        return Response(CheckResultSerializer(result).data, status=status.HTTP_201_CREATED)


def _with_log_file(request: Request) -> object:
    """The report's fields, a multipart form's ``log_file`` read into ``log`` (bounded)."""
    data = request.data
    upload = request.FILES.get("log_file") if hasattr(data, "getlist") else None
    if upload is None:
        return data
    fields = {key: data.get(key) for key in data if key != "log_file"}
    if fields.get("log"):
        raise ValidationError({"log_file": ["send the log as a file or as text, not both"]})
    raw = upload.read(CHECK_LOG_MAX * 4 + 1)  # UTF-8: at most 4 bytes a character
    if b"\x00" in raw:
        raise ValidationError({"log_file": ["must be a text file (it holds NUL bytes)"]})
    text = raw.decode("utf-8", errors="replace")
    if len(raw) > CHECK_LOG_MAX * 4 or len(text) > CHECK_LOG_MAX:
        raise ValidationError({"log_file": [f"must hold at most {CHECK_LOG_MAX} characters"]})
    fields["log"] = text
    return fields
