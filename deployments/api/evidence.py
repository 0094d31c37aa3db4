"""Evidence on the API: upload (multipart, streamed, bounded), QA sign-off, checked download."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.fields import SkipField, empty
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import policy, selectors, services
from deployments.api.shapes.evidence import EvidenceSerializer
from deployments.api.support.authentication import is_ci_key
from deployments.api.support.idempotency import PARAMETER as IDEMPOTENCY_KEY
from deployments.api.support.idempotency import idempotent
from deployments.api.support.parsers import RequestTooLarge
from deployments.lib import uploads, validation
from deployments.models import Evidence, EvidenceKind
from deployments.selectors import evidence as evidence_selectors

ERROR_REF = {"$ref": "#/components/schemas/Error"}

log = logging.getLogger(__name__)

_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)
_EID = OpenApiParameter("eid", OpenApiTypes.INT, OpenApiParameter.PATH, description="Evidence id.")


class _FormVerdictField(serializers.BooleanField):
    """A boolean form field that may be left out: absent (or sent empty) is no verdict, not
    false (DRF reads a form's missing checkbox as false)."""

    default_empty_html = empty

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data == "":
            raise SkipField()
        return super().validate_empty_values(data)


class EvidenceUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(
        allow_empty_file=False,
        max_length=10_000,
        help_text="The file, streamed; at most EVIDENCE_MAX_BYTES (default 50 MiB) or 413. "
        "Its name is kept without any path; its type is sniffed from its bytes.",
    )
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    # A form field is text: "true" or "false", or left out for no verdict (a form has no
    # null, so the document offers none and generated clients send none).
    passed = _FormVerdictField(
        required=False,
        help_text="Leave out for no verdict yet; false reports a failure (anyone); true is a "
        "QA sign-off (QA only, else 403).",
    )
    note = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=validation.COMMENT_MAX,
        help_text="A note kept with a verdict given at upload.",
    )


class EvidenceWithdrawSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=validation.COMMENT_MAX, help_text="Why it is withdrawn (audited)."
    )


class EvidenceSignOffSerializer(serializers.Serializer[Any]):
    passed = serializers.BooleanField(help_text="QA's verdict on the item.")
    note = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=validation.COMMENT_MAX
    )


def evidence_response(evidence: Evidence) -> FileResponse:
    """Stream the stored file after checking it against its SHA-256 (409 if it differs);
    only images, PDF and plain text open inline, with their sniffed type; the rest
    downloads as an attachment. Always nosniff, never cached."""
    if evidence.purged_at is not None:
        raise Gone(
            f"evidence #{evidence.pk} ({evidence.filename}) was withdrawn on "
            f"{evidence.withdrawn_at:%Y-%m-%d} and its bytes deleted once the retention "
            "period ended; its SHA-256 stays on record"
        )
    storage = evidence.file.storage
    sha = hashlib.sha256()
    with storage.open(evidence.file.name, "rb") as stored:
        for chunk in iter(lambda: stored.read(1024 * 1024), b""):
            sha.update(chunk)
    if sha.hexdigest() != evidence.sha256:
        log.error("evidence %s no longer matches its SHA-256", evidence.pk)
        raise policy.PolicyError(
            f"the stored file of evidence #{evidence.pk} ({evidence.filename}) no longer "
            f"matches the SHA-256 recorded at upload ({evidence.sha256[:12]}); it is not "
            "served: tell an administrator"
        )
    inline = uploads.served_inline(evidence.content_type)
    stream = FileResponse(
        storage.open(evidence.file.name, "rb"),
        as_attachment=not inline,
        filename=evidence.filename,
        content_type=evidence.content_type if inline else "application/octet-stream",
    )
    stream["X-Content-Type-Options"] = "nosniff"
    stream["Content-Length"] = str(evidence.size)
    stream["Cache-Control"] = "private, no-store"
    stream["Content-Security-Policy"] = "sandbox; default-src 'none'"
    stream["X-Evidence-SHA256"] = evidence.sha256
    return stream


class Gone(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This evidence file was deleted after it was withdrawn."
    default_code = "gone"


class EvidenceActionsMixin:
    """Ticket verbs for evidence; mixed into TicketViewSet."""

    @extend_schema(
        parameters=[_ID, IDEMPOTENCY_KEY],
        request={"multipart/form-data": EvidenceUploadSerializer},
        responses={
            201: EvidenceSerializer,
            413: OpenApiResponse(
                ERROR_REF, description="The file is over EVIDENCE_MAX_BYTES; nothing stored."
            ),
            409: OpenApiResponse(
                ERROR_REF,
                description="The ticket takes no more evidence (completed, cancelled, "
                "rejected, rolled back), or a quota would be passed: files or bytes per ticket "
                "(EVIDENCE_TICKET_MAX_FILES, EVIDENCE_TICKET_MAX_BYTES), bytes per person in "
                "24 hours (EVIDENCE_USER_DAILY_BYTES). Nothing stored.",
            ),
        },
        summary="Upload a file of testing evidence (multipart)",
    )
    @action(detail=True, methods=["post"], url_path="evidence", parser_classes=[MultiPartParser])
    @idempotent
    def evidence(self, request: Request, pk: str) -> Response:
        ticket = selectors.ticket_get(request.user, pk)
        data = request.data  # parses the body: files stream to disk, bounded
        refused = uploads.refusal(request._request)
        if refused:
            raise RequestTooLarge(refused)
        payload = EvidenceUploadSerializer(data=data)
        payload.is_valid(raise_exception=True)
        item = services.evidence_upload(
            ticket_id=ticket.pk,
            actor=request.user,
            file=payload.validated_data["file"],
            kind=payload.validated_data["kind"],
            passed=payload.validated_data.get("passed"),
            note=payload.validated_data["note"],
            ci_key=is_ci_key(request.auth),
        )
        return Response(EvidenceSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[_ID, _EID],
        request=EvidenceSignOffSerializer,
        responses={200: EvidenceSerializer},
        summary="QA's verdict on one evidence item",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"evidence/(?P<eid>[0-9]+)/signoff",
        url_name="evidence-signoff",
    )
    def evidence_signoff(self, request: Request, pk: str, eid: str) -> Response:
        item = evidence_selectors.evidence_get(request.user, pk, eid)
        payload = EvidenceSignOffSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.evidence_sign_off(
            ticket_id=item.ticket_id,
            evidence_id=item.pk,
            actor=request.user,
            passed=payload.validated_data["passed"],
            note=payload.validated_data["note"],
            ci_key=is_ci_key(request.auth),
        )
        return Response(EvidenceSerializer(item).data)

    @extend_schema(
        parameters=[_ID, _EID],
        request=EvidenceWithdrawSerializer,
        responses={200: EvidenceSerializer},
        summary="Withdraw an evidence file the ticket has not finished with",
        description=(
            "Its uploader or QA (403 for others; never with a `ci` key), with a reason; 409 "
            "on a completed or rolled-back ticket (its evidence is part of the record) or "
            "when already withdrawn. A withdrawn file stops counting for the QA sign-off and "
            "the quotas at once; its bytes are kept for EVIDENCE_WITHDRAWN_RETENTION_DAYS "
            "(30), then deleted (the row, its SHA-256 and the audit trail stay)."
        ),
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"evidence/(?P<eid>[0-9]+)/withdraw",
        url_name="evidence-withdraw",
    )
    def evidence_withdraw(self, request: Request, pk: str, eid: str) -> Response:
        item = evidence_selectors.evidence_get(request.user, pk, eid)
        payload = EvidenceWithdrawSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = services.evidence_withdraw(
            ticket_id=item.ticket_id,
            evidence_id=item.pk,
            actor=request.user,
            reason=payload.validated_data["reason"],
        )
        fresh = evidence_selectors.evidence_for(item.ticket).get(pk=item.pk)
        return Response(EvidenceSerializer(fresh).data)

    @extend_schema(
        parameters=[_ID, _EID],
        request=None,
        responses={
            **{
                (200, media): OpenApiResponse(
                    OpenApiTypes.BINARY,
                    description="The file byte for byte. Images, PDF and plain text inline "
                    "with their sniffed type; anything else as an application/octet-stream "
                    "attachment; always nosniff.",
                )
                for media in [*sorted(uploads.INLINE_TYPES), "application/octet-stream"]
            },
            409: OpenApiResponse(
                ERROR_REF,
                description="The stored file no longer matches its SHA-256; not served.",
            ),
            410: OpenApiResponse(
                ERROR_REF,
                description="Withdrawn, and its bytes deleted once the retention period ended.",
            ),
        },
        summary="Download one evidence file, checked against its SHA-256",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"evidence/(?P<eid>[0-9]+)/download",
        url_name="evidence-download",
    )
    def evidence_download(self, request: Request, pk: str, eid: str) -> FileResponse:
        item = evidence_selectors.evidence_get(request.user, pk, eid)
        return evidence_response(item)
