"""Domain errors to HTTP, in one place: 400 bad input, 403 refused actor, 409 refused state.

Everything under /api/ answers JSON ``{"detail": ...}``: errors raised in DRF views go
through ``exception_handler``; those Django itself produces before or outside a view (an
unknown URL, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, an unhandled crash) through the
``handler400/403/404/500`` views below, which changecontrol/urls.py installs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from deployments.policy import PolicyError
from deployments.services import InputError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out: list[str] = []
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            out += _flatten(value, f"{name}." if name else "")
        return out
    if isinstance(errors, list):
        out = []
        for item in errors:
            out += _flatten(item, prefix)
        return out
    field = prefix.rstrip(".")
    return [f"{field}: {errors}" if field else str(errors)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, InputError):
        return Response(
            {"detail": f"{exc.field}: {exc.message}", exc.field: [exc.message]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, PolicyError):
        code = (
            status.HTTP_403_FORBIDDEN if exc.kind == PolicyError.ACTOR else status.HTTP_409_CONFLICT
        )
        if "policies" in exc.data and "request" in context:
            # Refused by the plan's Rego policies: audited like a refusal of the person
            # (access.refused, with the ticket), after the refused change rolled back.
            from deployments.lib.middleware import note_refusal

            note_refusal(context["request"], exc.message)
        return Response({**exc.data, "detail": exc.message}, status=code)
    if isinstance(exc, RequestDataTooBig):
        # Django's own limit on form bodies (and on request.body when read whole).
        return Response({"detail": "request body too large"}, status=413)
    response = drf_exception_handler(exc, context)
    if response is None:
        return _internal_error(context.get("request"), exc)
    if isinstance(exc, exceptions.ValidationError):
        data = response.data
        body: dict[str, Any] = dict(data) if isinstance(data, dict) else {"errors": data}
        body["detail"] = "; ".join(_flatten(data)) or "invalid input"
        response.data = body
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"detail": f"malformed request body: {exc.detail}"}
    elif isinstance(exc, exceptions.UnsupportedMediaType) and str(exc.detail).startswith(
        "Unsupported media type"
    ):
        # DRF's own refusal (a view's own says more already): name what the endpoint reads.
        response.data = {"detail": _unsupported_media_type(exc, context)}
    return response


def _unsupported_media_type(exc: exceptions.UnsupportedMediaType, context: dict[str, Any]) -> str:
    """Say what the endpoint reads: JSON everywhere, multipart where a file is uploaded."""
    request = context.get("request")
    sent = (getattr(request, "content_type", "") or "").split(";")[0].strip() or "(none)"
    view = context.get("view")
    accepted = [parser.media_type for parser in getattr(view, "parser_classes", [])]
    if not accepted:
        return str(exc.detail)
    return f"unsupported media type {sent}: send {' or '.join(accepted)}"


def _internal_error(request: Any, exc: BaseException | None) -> Response:
    """A crash answers JSON with an id to quote, and the traceback goes to the log."""
    set_rollback()
    request_id = uuid.uuid4().hex
    path = getattr(request, "path", "?")
    log.error(
        "internal error %s on %s %s",
        request_id,
        getattr(request, "method", "?"),
        path,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    return Response(
        {"detail": "internal error", "request_id": request_id},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": "request body too large"}, status=413)
    return JsonResponse({"detail": "bad request"}, status=400)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    from deployments.lib.middleware import note_refusal

    note_refusal(request, str(exception) or "forbidden")
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(
        {"detail": "You do not have permission to perform this action."}, status=403
    )


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found."}, status=404)


def handler500(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    # Django has already logged the traceback (django.request); give the caller an id.
    request_id = uuid.uuid4().hex
    log.error("internal error %s on %s %s", request_id, request.method, request.path)
    return JsonResponse({"detail": "internal error", "request_id": request_id}, status=500)
