"""The API's JSON parser: refuses, with 400/413, any body a later read could not render."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from deployments.lib import validation


class RequestTooLarge(exceptions.APIException):
    """A request body over the documented maximum (maps to HTTP 413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "request_too_large"


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; PostgreSQL's jsonb refuses them on write.
    raise ValueError(f"{name} is not a valid JSON number")


class StrictJSONParser(JSONParser):
    """JSON objects only, at most API_JSON_MAX_BYTES, nested at most JSON_MAX_DEPTH deep,
    with no NUL characters, lone surrogates, non-finite or out-of-range numbers.

    The limit is for JSON bodies only: file uploads (multipart) have their own, larger one.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit: int = settings.API_JSON_MAX_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and str(declared).isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body is over the {limit}-byte limit for JSON")
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(f"request body is over the {limit}-byte limit for JSON")
        try:
            text = raw.decode("utf-8")
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise exceptions.ParseError(
                f"JSON is nested deeper than {validation.JSON_MAX_DEPTH} levels"
            ) from None
        except ValueError as exc:
            # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError("the request body must be a JSON object")
        problem = validation.json_problem(data, validation.JSON_MAX_DEPTH)
        if problem:
            raise exceptions.ParseError(f"the request body {problem}")
        return data
