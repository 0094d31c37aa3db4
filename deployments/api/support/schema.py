"""The OpenAPI document is the contract: every operation lists the errors it can answer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "An error: `detail` is a sentence for people; for bad input (400) each offending "
        "field is also a key holding a list of messages."
    ),
    "properties": {
        "detail": {"type": "string"},
        "request_id": {"type": "string", "description": "Quote it when reporting a 500."},
    },
    "required": ["detail"],
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    "400": "Bad input: the body or a query parameter is invalid (`detail` names the field).",
    "401": "Not authenticated: send `Authorization: Token <key>` (or `Bearer <key>`).",
    "403": "Refused: the caller may not do this (the reason is in `detail`).",
    "404": "No such object, or not visible to the caller.",
    "405": "Method not allowed.",
    "409": "Refused by the ticket's state or the environment's policy (reason in `detail`).",
    "413": "Request body over the documented maximum.",
    "415": (
        "Unsupported media type: send JSON (multipart/form-data only where a file is "
        "uploaded); `detail` names what the endpoint reads."
    ),
    "422": "The Idempotency-Key was already used for a different request (use a new key).",
    "429": (
        "Too many requests for this user (API_THROTTLE_RATE): wait the `Retry-After` "
        "seconds, then retry."
    ),
}


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    codes = ["401", "403", "429"]
    if any(
        p.get("in") == "header" and p.get("name") == "Idempotency-Key"
        for p in operation.get("parameters", [])
    ):
        codes.append("422")
    has_params = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if method in {"post", "put", "patch"}:
        codes += ["400", "409", "413", "415"]
    elif has_params:
        codes.append("400")
    if "{" in path:
        codes.append("404")
    return sorted(codes)


def add_error_responses(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: an Error component and the error answers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if not path.startswith("/api/v1/") or path == "/api/v1/schema/":
                continue
            responses = operation.setdefault("responses", {})
            for code in _error_statuses(path, method, operation):
                answer: dict[str, Any] = {
                    "description": _DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": ref}},
                }
                if code == "429":
                    answer["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
                    }
                responses.setdefault(code, answer)
    return result


# Request objects whose unknown keys the API refuses (400): say so in the contract.
CLOSED_REQUEST_OBJECTS = ("RiskAssessmentRequest", "RollbackPlanRequest")


def close_strict_objects(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: additionalProperties false on strict objects."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in CLOSED_REQUEST_OBJECTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's generator, with blank-or-constrained text stated validly.

    For a text field that may be blank and has a pattern (``^[^\\u0000]+$``, a 40-hex SHA)
    or a format (uri), drf-spectacular writes ``oneOf: [{pattern, default: ""}, {maxLength:
    0}]``: the default sits in the branch whose pattern refuses it, and with a format alone
    ``""`` matches both branches, which ``oneOf`` forbids; openapi-spec-validator rejects
    the document either way. Here the default belongs to the property and the branches are
    ``anyOf`` (blank, or text meeting the constraint): what the server accepts, no looser.
    """

    def _insert_field_validators(self, field: Any, schema: dict[str, Any]) -> None:
        super()._insert_field_validators(field, schema)
        branches = schema.get("oneOf")
        if (
            isinstance(branches, list)
            and len(branches) == 2
            and branches[1] == {"type": "string", "maxLength": 0}
        ):
            schema["anyOf"] = schema.pop("oneOf")
            if "default" in branches[0]:
                schema["default"] = branches[0].pop("default")
