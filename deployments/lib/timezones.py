"""The viewer's time zone: a per-user preference, activated for every request."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from deployments.models import UserPreference

SESSION_KEY = "portal_timezone"


@lru_cache(maxsize=1)
def available_zones() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_zone(name: str) -> bool:
    return bool(name) and len(name) <= 64 and name in available_zones()


def zone_of(user: Any) -> str:
    """The zone a user's pages are shown in (settings.TIME_ZONE until they have one)."""
    if not getattr(user, "is_authenticated", False):
        return str(settings.TIME_ZONE)
    pref = UserPreference.objects.filter(user=user).only("timezone").first()
    return pref.timezone if pref else str(settings.TIME_ZONE)


class ActivateUserTimezone:
    """Render every page in the signed-in person's zone (kept in the session between reads)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            name = request.session.get(SESSION_KEY)
            if not name:
                name = zone_of(user)
                request.session[SESSION_KEY] = name
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def timezone_context(request: HttpRequest) -> dict[str, Any]:
    """Whether the page should offer the browser's zone (no zone chosen or guessed yet)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    pref = UserPreference.objects.filter(user=user).only("timezone").first()
    return {"viewer_timezone": timezone.get_current_timezone_name(), "tz_unset": pref is None}
