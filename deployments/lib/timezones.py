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


# The zones most teams work in, offered first by the settings page's zone picker.
COMMON_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Warsaw",
    "Europe/Kyiv",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


def zone_choices(now: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """The zone picker's choices: the common zones (with their offset now) first, then
    every zone; each value is the IANA name."""
    known = set(available_zones())

    def label(zone: str) -> str:
        offset = now.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%z")
        sign, hours, minutes = offset[:1], offset[1:3], offset[3:]
        text = f"UTC{sign}{hours}:{minutes}".replace("-", "\u2212")
        city = zone.rsplit("/", 1)[-1].replace("_", " ")
        return f"{city} — {zone} ({text})" if zone != "UTC" else "UTC"

    common = [(z, label(z)) for z in COMMON_ZONES if z in known]
    return [
        ("Common zones", common),
        ("Every zone", [(z, z) for z in available_zones()]),
    ]


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
