"""Domain errors to HTTP, in one place: 400 bad input, 403 refused actor, 409 refused state."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from deployments.policy import PolicyError
from deployments.services import InputError


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
        return Response({"detail": exc.message}, status=code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        data = response.data
        body: dict[str, Any] = dict(data) if isinstance(data, dict) else {"errors": data}
        body["detail"] = "; ".join(_flatten(data)) or "invalid input"
        response.data = body
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"detail": f"malformed request body: {exc.detail}"}
    return response
