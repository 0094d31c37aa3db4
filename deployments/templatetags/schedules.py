"""Template helpers for windows and schedules: times in their own zone with UTC (the ticket
page's schedule section reads TicketView.schedule)."""

from __future__ import annotations

import datetime as dt

from django import template

from deployments.lib import presentation

register = template.Library()


@register.filter
def in_zone(moment: dt.datetime | None, zone: str) -> str:
    """'Thu 26 Nov 02:00 EST (07:00 UTC)'."""
    if moment is None:
        return ""
    return presentation.format_in_zone(moment, zone or "UTC")
