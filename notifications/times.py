"""Times in messages, shown in each reader's zone (issue 22).

A message names an instant with :func:`stamp` (a marker holding it in UTC); ``notify()``
renders the marker for each person in the time zone of their settings
(``user.preference.timezone``) and for team channels (Slack, SNS) in UTC, so an email reads
"Tue 01 Dec 03:00 EST" for a reader in New York and "Tue 01 Dec 09:00 CET" in Paris."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ObjectDoesNotExist

_MARK = re.compile(r"\[\[t:([0-9T:+\-.]+)\]\]")


def stamp(moment: dt.datetime) -> str:
    """A marker for ``moment`` that notify() renders in each reader's zone."""
    return f"[[t:{moment.astimezone(dt.UTC).isoformat(timespec='seconds')}]]"


def zone_of(user: Any) -> str:
    """The person's zone (their settings), UTC without one; never imports the domain."""
    try:
        preference = getattr(user, "preference", None)
    except ObjectDoesNotExist:
        preference = None
    return str(getattr(preference, "timezone", "") or "UTC")


def _format(moment: dt.datetime, zone: str) -> str:
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local, zone = moment.astimezone(dt.UTC), "UTC"
    text = f"{local:%a %d %b %Y %H:%M} {local.tzname() or zone}"
    if zone != "UTC" and local.utcoffset() != dt.timedelta(0):
        text += f" ({moment.astimezone(dt.UTC):%H:%M} UTC)"
    return text


def render(text: str, zone: str = "UTC") -> str:
    """Every marker of ``text`` as a time in ``zone``."""

    def one(match: re.Match[str]) -> str:
        try:
            moment = dt.datetime.fromisoformat(match.group(1))
        except ValueError:
            return match.group(0)
        return _format(moment, zone)

    return _MARK.sub(one, text)
