"""``Idempotency-Key`` on POSTs that create things: a retry replays the first answer.

The first request with a key inserts an IdempotencyRecord in the same transaction as the
thing it creates, so a concurrent request with the same key waits on the unique
(user, key) index and then replays the committed answer (PostgreSQL), or finds it after the
first commits (SQLite serialises writers): one creation either way. The same key with a
different body, method or path is refused with 422. Answers of 5xx or refusals raised as
exceptions are not stored (the whole transaction rolls back), so the client may retry.
Records are forgotten after IDEMPOTENCY_TTL_HOURS (beat task ``idempotency_cleanup``, which
calls services.apikeys.idempotency_cleanup).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deployments.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
KEY_MAX = 255

PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional, 1 to 255 printable ASCII characters, unique per request you mean once (a "
        "UUID). A retry with the same key and body replays the first answer (same status "
        "and body, header `Idempotent-Replayed: true`) and creates nothing; the same key "
        "with another body is a 422. Keys are remembered for 24 hours."
    ),
    pattern=r"^[\x21-\x7e]{1,255}$",
)


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


def _file_digest(upload: Any) -> str:
    """SHA-256 of an uploaded file's bytes, read in chunks (never whole into memory); the
    file is rewound for the view."""
    sha = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        sha.update(chunk)
    upload.seek(0)
    return sha.hexdigest()


def _body_digest(request: Request) -> str:
    data = request.data
    if isinstance(data, QueryDict):
        files = request.FILES
        # A file is its bytes: another file of the same name and size is another request.
        payload: Any = {
            "form": sorted((k, v) for k, vs in data.lists() for v in vs if k not in files),
            "files": sorted(
                (name, f.name, f.size, _file_digest(f))
                for name in files
                for f in files.getlist(name)
            ),
        }
    else:
        payload = data
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _clean_key(raw: str) -> str:
    if not 1 <= len(raw) <= KEY_MAX or not all(0x21 <= ord(c) <= 0x7E for c in raw):
        raise ValidationError(
            {HEADER: [f"{HEADER} must be 1 to {KEY_MAX} printable ASCII characters, no spaces"]}
        )
    return raw


def _replay(record: IdempotencyRecord, method: str, path: str, digest: str) -> Response:
    if (record.method, record.path, record.request_digest) != (method, path, digest):
        raise IdempotencyKeyReused(
            f"This {HEADER} was already used for a different request "
            f"({record.method} {record.path} with another body); use a new key."
        )
    return Response(
        record.response_body, status=record.response_status, headers={REPLAY_HEADER: "true"}
    )


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a create-style view method to honour Idempotency-Key."""

    @wraps(view)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw = request.headers.get(HEADER)
        if raw is None or not request.user.is_authenticated:
            return view(self, request, *args, **kwargs)
        key = _clean_key(raw)
        method, path = request.method or "POST", request.path[:500]
        digest = _body_digest(request)
        existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if existing is not None:
            return _replay(existing, method, path, digest)
        try:
            with transaction.atomic():
                # Inserted first: a concurrent twin blocks here until this one commits.
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        method=method,
                        path=path,
                        request_digest=digest,
                        response_status=0,
                        response_body=None,
                    )
                response = view(self, request, *args, **kwargs)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                    return response
                record.response_status = response.status_code
                record.response_body = json.loads(json.dumps(response.data, default=str))
                record.save(update_fields=["response_status", "response_body"])
                return response
        except IntegrityError:
            # The twin committed first: answer as it did.
            winner = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if winner is None:
                raise
            return _replay(winner, method, path, digest)

    return wrapper
