"""``Authorization: Token <key>`` (or ``Bearer <key>``) against hashed API keys, and what a
key's scope may do."""

from __future__ import annotations

import hmac
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from deployments.models import ApiKey, ApiKeyScope
from deployments.services import apikeys

KEYWORD = "Token"
# Clients generated from the OpenAPI document (openapi-python-client, openapi-generator)
# send `Bearer <key>` by default: the same key, the same checks.
KEYWORDS = frozenset({b"token", b"bearer"})
_MAX_KEY_LENGTH = 200

# What a key of scope "ci" may do besides reading: file tickets, re-plan, post check
# results and upload evidence. Approving, rejecting, deploying and cancelling need a person's
# full key (or the browser).
CI_ACTIONS = frozenset({"create", "plan", "checks", "check", "evidence"})


class ApiKeyAuthentication(BaseAuthentication):
    """Find the key by its prefix, compare SHA-256 digests in constant time."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: send `Authorization: Token <key>` (or `Bearer <key>`)."
            )
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if not 8 <= len(key) <= _MAX_KEY_LENGTH or not key.isprintable():
            raise exceptions.AuthenticationFailed("Invalid API key.")
        digest = apikeys.key_digest(key)
        match: ApiKey | None = None
        candidates = ApiKey.objects.select_related("user").filter(prefix=apikeys.key_prefix(key))
        for candidate in candidates:
            if hmac.compare_digest(candidate.digest, digest):
                match = candidate
        if match is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if match.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                f"This API key ({match.prefix}…, {match.name!r}) was revoked."
            )
        if match.is_expired():
            raise exceptions.AuthenticationFailed(
                f"This API key ({match.prefix}…, {match.name!r}) expired at "
                f"{match.expires_at:%Y-%m-%d %H:%M} UTC."
            )
        if not match.user.is_active:
            raise exceptions.AuthenticationFailed("The API key's user is inactive.")
        apikeys.api_key_touch(match)
        return match.user, match

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


def is_ci_key(auth: Any) -> bool:
    """Did this request authenticate with an API key of scope ``ci`` (a machine)?"""
    return isinstance(auth, ApiKey) and auth.scope == ApiKeyScope.CI


class ApiKeyScopeAllows(BasePermission):
    """A key scoped to CI reads and files; it may not approve, reject, deploy or cancel."""

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey) or api_key.scope != ApiKeyScope.CI:
            return True
        if request.method in SAFE_METHODS:
            return True
        action = getattr(view, "action", None) or ""
        if action in CI_ACTIONS:
            return True
        raise exceptions.PermissionDenied(
            f"This API key has scope 'ci', which may not {action or 'do this'} "
            "(CI keys may read, file tickets, plan, and post checks and evidence); "
            "use a key with scope 'full'."
        )


_KEY_HELP = (
    "an API key from the API tokens page (/settings/tokens/) or `manage.py "
    "create_api_token`. Keys of scope `ci` may read, file tickets, plan and post checks and "
    "evidence only, never with QA's pass (a person's act)."
)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The key in the schema, either way it may be sent: `Authorization: Bearer <key>` (what
    generated clients send) or `Authorization: Token <key>`. Either one is enough."""

    target_class = "deployments.api.support.authentication.ApiKeyAuthentication"
    name = ["bearerAuth", "tokenAuth"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"bearerAuth": []}, {"tokenAuth": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": f"`Authorization: Bearer <key>`: {_KEY_HELP}",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": f"`Authorization: Token <key>`: {_KEY_HELP}",
            },
        ]
