"""API keys: created (the secret returned once, stored as its SHA-256), used, revoked; audited."""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments.lib import validation
from deployments.models import ApiKey, ApiKeyScope, IdempotencyRecord
from deployments.services._base import InputError
from deployments.services.audit import audit_record

KEY_PREFIX = "ccp_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_RANDOM = 8
# Keys of the DRF authtoken era (40 hex) were hashed into ApiKey with their first 8 characters.
LEGACY_PREFIX_LENGTH = 8
# last_used_at is written at most once per this interval (not once per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3650
NAME_MAX = 100


def key_digest(key: str) -> str:
    """The stored form of a key: SHA-256 hex of its text."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def key_prefix(key: str) -> str:
    """The lookup prefix of a presented key (ours: ``ccp_`` + 8 characters; legacy: 8)."""
    if key.startswith(KEY_PREFIX):
        return key[: len(KEY_PREFIX) + _PREFIX_RANDOM]
    return key[:LEGACY_PREFIX_LENGTH]


def _new_key() -> tuple[str, str]:
    prefix = KEY_PREFIX + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_RANDOM))
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def clean_key_input(*, name: Any, scope: Any, expires_days: Any) -> tuple[str, str, int | None]:
    """Validate a new key's name, scope and expiry (days from now, or None for never)."""
    clean_name = validation.clean_text(name, "name", NAME_MAX).strip()
    if not clean_name:
        raise InputError("name", "a name is required (what uses this key?)")
    if scope not in ApiKeyScope.values:
        raise InputError("scope", f"scope must be one of {', '.join(ApiKeyScope.values)}")
    days: int | None = None
    if expires_days not in (None, ""):
        text = str(expires_days)
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_EXPIRY_DAYS:
            raise InputError(
                "expires_days", f"expiry must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}"
            )
        days = int(text)
    return clean_name, str(scope), days


def api_key_create(
    *,
    actor: Any,
    user: Any,
    name: Any,
    scope: Any = ApiKeyScope.FULL,
    expires_days: Any = None,
    via: str = "web",
) -> tuple[ApiKey, str]:
    """A new key for ``user``; returns the row and the key, which is never stored or shown again."""
    clean_name, clean_scope, days = clean_key_input(
        name=name, scope=scope, expires_days=expires_days
    )
    now = timezone.now()
    prefix, key = _new_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user,
            name=clean_name,
            prefix=prefix,
            digest=key_digest(key),
            scope=clean_scope,
            created_at=now,
            expires_at=now + timedelta(days=days) if days else None,
        )
        audit_record(
            actor=actor,
            action="account.api_key_create",
            data={
                "user": user.get_username(),
                "key_id": api_key.pk,
                "name": clean_name,
                "prefix": prefix,
                "scope": clean_scope,
                "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
                "via": via,
            },
        )
    return api_key, key


def api_key_revoke(*, actor: Any, key_id: int, user: Any) -> ApiKey:
    """Revoke one of ``user``'s keys (idempotent: revoking a revoked key changes nothing)."""
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=key_id, user=user)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="account.api_key_revoke",
                data={
                    "user": user.get_username(),
                    "key_id": api_key.pk,
                    "name": api_key.name,
                    "prefix": api_key.prefix,
                },
            )
    return api_key


def api_key_touch(api_key: ApiKey, now: datetime | None = None) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION (one guarded UPDATE, no lock)."""
    now = now or timezone.now()
    last = api_key.last_used_at
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


def idempotency_cleanup(now: Any = None) -> int:
    """Forget records older than IDEMPOTENCY_TTL_HOURS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
