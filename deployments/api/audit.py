"""GET /api/v1/audit/ (SPEC §5): the audit trail, newest first, filtered; JSON Lines and
CSV exports of the same filter stream in constant memory."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from deployments import selectors
from deployments.api.shapes.common import FreeFormObjectField
from deployments.api.support.pagination import _bounded
from deployments.models import AuditEvent
from deployments.services import InputError

# Rows fetched per query while exporting: memory stays flat however many match.
EXPORT_CHUNK = 2000
FORMATS = ("json", "jsonl", "csv")
EXPORT_FIELDS = (
    "id",
    "at",
    "actor",
    "actor_id",
    "action",
    "ticket",
    "data",
    "prev_hash",
    "hash",
)


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_name", help_text="Username, or 'system'/'worker'.")
    actor_id = serializers.IntegerField(
        allow_null=True, help_text="The user's id (hashed with the event); null for the portal."
    )
    ticket = serializers.IntegerField(source="ticket_id", allow_null=True)
    data = FreeFormObjectField(help_text="The event's details; keys vary by action.")  # type: ignore[assignment]

    class Meta:
        model = AuditEvent
        fields = list(EXPORT_FIELDS)


class AuditCursorPagination(CursorPagination):
    """Newest first by id: no COUNT over the table, constant cost per page at any depth."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        # The project's bounded integers: a bad limit is a 400, never silently the default.
        return _bounded(request, "limit", self.page_size, 1, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "limit":
                parameter["description"] = f"Events per page (default {self.page_size})."
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 200}
        return parameters

    def decode_cursor(self, request: Request) -> Any:
        # A cursor that is not one of ours is bad input (400), not a missing page.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": ["not a cursor this API handed out"]}) from None


class _StreamRenderer(BaseRenderer):
    """Lets ``?format=jsonl|csv`` through DRF's negotiation; the view streams the body."""

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        # Only errors (403, 400) reach a renderer: they are JSON whatever was asked.
        return json.dumps(data).encode()


class JsonLinesRenderer(_StreamRenderer):
    media_type = "application/jsonl"
    format = "jsonl"


class CsvRenderer(_StreamRenderer):
    media_type = "text/csv"
    format = "csv"


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    pk, at, actor, actor_id, action, ticket, data, prev_hash, hash_ = values
    return {
        "id": pk,
        # In UTC exactly as hashed (docs/audit.md: re-verify an export without the portal).
        "at": at.astimezone(dt.UTC).isoformat(),
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "ticket": ticket,
        "data": data,
        "prev_hash": prev_hash,
        "hash": hash_,
    }


def _chunks(events: QuerySet[AuditEvent]) -> Iterator[list[dict[str, Any]]]:
    """The filtered events newest first, in keyset pages of EXPORT_CHUNK (no open cursor
    between chunks, no OFFSET: each page is an index range scan below the last id)."""
    columns = (
        "id",
        "at",
        "actor_name",
        "actor_id",
        "action",
        "ticket_id",
        "data",
        "prev_hash",
        "hash",
    )
    last: int | None = None
    while True:
        page = events if last is None else events.filter(id__lt=last)
        rows = list(page.values_list(*columns)[:EXPORT_CHUNK])
        if not rows:
            return
        yield [_row(values) for values in rows]
        last = rows[-1][0]


def jsonl_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    for chunk in _chunks(events):
        yield "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in chunk)


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    yield buffer.getvalue()
    for chunk in _chunks(events):
        buffer.seek(0)
        buffer.truncate()
        for row in chunk:
            values = [row[name] for name in EXPORT_FIELDS]
            values[EXPORT_FIELDS.index("data")] = json.dumps(
                row["data"], ensure_ascii=False, sort_keys=True
            )
            writer.writerow(["" if value is None else value for value in values])
        yield buffer.getvalue()


def export_response(events: QuerySet[AuditEvent], kind: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if kind == "csv":
        response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(jsonl_lines(events), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{kind}"'
    response["Cache-Control"] = "no-store"
    return response


_TEXT = r"^[^\u0000]{0,150}$"
_PARAMETERS = [
    OpenApiParameter("ticket", OpenApiTypes.INT, description="Events of this ticket."),
    OpenApiParameter(
        "actor",
        OpenApiTypes.STR,
        description="Events by this username ('system', 'worker', 'scheduler' for the portal).",
        pattern=_TEXT,
    ),
    OpenApiParameter(
        "action",
        OpenApiTypes.STR,
        description=(
            "An action, exactly ('approval.grant'), or a prefix ending in '*' or '.' "
            "('ticket.*', 'access.')."
        ),
        pattern=_TEXT,
    ),
    OpenApiParameter(
        "stack",
        OpenApiTypes.STR,
        description=(
            "A stack's trail (GET /api/v1/stacks/): the events of its tickets, its "
            "declaration and changes, its run triggers and the drift found in its "
            "deployments. Empty: every stack. An unknown stack: 400."
        ),
        pattern=r"^[a-z0-9_-]{0,64}$",
    ),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        description="Events at or after this ISO 8601 instant (no offset: UTC). Bad input: 400.",
    ),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATETIME,
        description="Events before this ISO 8601 instant (no offset: UTC). Bad input: 400.",
    ),
    OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=list(FORMATS),
        description=(
            "json (default): one page. jsonl or csv: every matching event, newest first, "
            "streamed as a file download (one JSON object per line; or CSV with a header "
            "row and data as JSON text)."
        ),
    ),
]


class AuditEventList(generics.ListAPIView[AuditEvent]):
    """The tamper-evident audit trail (docs/audit.md): operations, leads and staff."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditCursorPagination
    renderer_classes = [JSONRenderer, JsonLinesRenderer, CsvRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # An unknown ?format= is bad input (400 naming it), not DRF's 404.
        kind = request.query_params.get("format")
        if kind is not None and kind not in FORMATS and not force:
            raise ValidationError({"format": [f"must be one of {', '.join(FORMATS)}"]})
        return super().perform_content_negotiation(request, force)

    def handle_exception(self, exc: Exception) -> Any:
        # Errors answer JSON (the documented Error object) even when a file was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def get_queryset(self) -> QuerySet[AuditEvent]:
        try:
            filters = selectors.audit_filters(self.request.query_params, blank_is_absent=False)
        except InputError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return selectors.audit_events(self.request.user, filters)

    @extend_schema(
        operation_id="audit_list",
        parameters=_PARAMETERS,
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.STR),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        kind = request.accepted_renderer.format
        if kind in ("jsonl", "csv"):
            return export_response(self.get_queryset(), kind)
        return super().get(request, *args, **kwargs)
