"""Accounts in the audit trail: sign-ins, failed sign-ins, role and privilege changes (API
keys: apikeys).

Passwords never reach these functions' records: a failed sign-in keeps only the name that
was tried and where it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from deployments.models import UserPreference
from deployments.services.audit import audit_record

# Long or hostile names are cut and cleaned before they are stored (JSON in PostgreSQL
# refuses NUL; lone surrogates do not encode).
_NAME_LIMIT = 150


def _clean(text: Any, limit: int = _NAME_LIMIT) -> str:
    value = str(text or "")[:limit].replace("\x00", "")
    return value.encode("utf-8", "replace").decode("utf-8")


def _client(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    try:
        from allauth.account.adapter import get_adapter

        ip = get_adapter(request).get_client_ip(request)
    except Exception:  # no address is better than a failed sign-in page
        ip = request.META.get("REMOTE_ADDR", "")
    return {"ip": _clean(ip, 64), "user_agent": _clean(request.META.get("HTTP_USER_AGENT"), 200)}


def signin_record(*, user: Any, request: HttpRequest | None) -> None:
    """Audit a successful sign-in."""
    with transaction.atomic():
        audit_record(actor=user, action="account.signin", data=_client(request))


def signin_failure_record(*, username: str, request: HttpRequest | None) -> None:
    """Audit a failed sign-in: the name tried and the client, never the password."""
    with transaction.atomic():
        audit_record(
            actor="anonymous",
            action="account.signin_failed",
            data={"username": _clean(username), **_client(request)},
        )


def roles_change_record(
    *, actor: Any, user: Any, added: Iterable[str], removed: Iterable[str], via: str = "admin"
) -> None:
    """Audit a change of a user's roles (groups); nothing when they are unchanged."""
    added, removed = sorted(added), sorted(removed)
    if not added and not removed:
        return
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="account.roles_change",
            data={"user": user.get_username(), "added": added, "removed": removed, "via": via},
        )


# The account flags that grant or withdraw access beyond the roles: superuser status is
# every role at once, staff opens the admin, inactive shuts every door.
PRIVILEGE_FLAGS = ("is_active", "is_staff", "is_superuser")


def privileges_change_record(
    *, actor: Any, user: Any, before: dict[str, bool], via: str = "admin"
) -> None:
    """Audit a change of the user's PRIVILEGE_FLAGS from ``before``; nothing when unchanged."""
    changed = [f for f in PRIVILEGE_FLAGS if bool(getattr(user, f)) != bool(before.get(f))]
    if not changed:
        return
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="account.privileges_change",
            data={
                "user": user.get_username(),
                "granted": sorted(f for f in changed if getattr(user, f)),
                "revoked": sorted(f for f in changed if not getattr(user, f)),
                "via": via,
            },
        )


def github_login_set(*, actor: Any, user: Any, login: str) -> None:
    """Link ``user`` to a GitHub login (``""`` unlinks): pushes by that GitHub account are
    filed as them. Audited with the login before and after; nothing when unchanged."""
    from deployments.models import GitHubLogin

    login = login.strip()
    with transaction.atomic():
        current = GitHubLogin.objects.select_for_update().filter(user=user).first()
        before = current.login if current else ""
        if before == login:
            return
        if not login:
            if current is not None:
                current.delete()
        elif current is None:
            GitHubLogin(user=user, login=login).full_clean()
            GitHubLogin.objects.create(user=user, login=login)
        else:
            current.login = login
            current.full_clean()
            current.save(update_fields=["login", "linked_at"])
        audit_record(
            actor=actor,
            action="account.github_login",
            data={"user": user.get_username(), "before": before, "after": login},
        )


def timezone_preference_set(*, actor: Any, zone: str, chosen: bool) -> UserPreference | None:
    """Store a zone: ``chosen`` from the settings page; a browser guess never overrides a choice.
    Returns None when a guess was ignored."""
    with transaction.atomic():
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=actor)
        if not chosen and pref.timezone_chosen:
            return None
        pref.timezone = zone
        pref.timezone_chosen = pref.timezone_chosen or chosen
        pref.save(update_fields=["timezone", "timezone_chosen", "updated_at"])
        return pref
