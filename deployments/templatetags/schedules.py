"""Template helpers for windows and schedules: times in their environment's zone with UTC,
the viewer's own time on hover (the ticket page's schedule section reads
TicketView.schedule). A panel shows one zone: these, or portal_time's ``usertime``."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from deployments.lib import presentation

register = template.Library()


@register.filter
def in_zone(moment: dt.datetime | None, zone: str) -> SafeString | str:
    """'Thu 26 Nov 02:00 EST (07:00 UTC)' in a <time> whose title is the viewer's time."""
    if moment is None:
        return ""
    mine = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{} your time">{}</time>',
        moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        f"{mine:%Y-%m-%d %H:%M} {mine.tzname()}",
        presentation.format_in_zone(moment, zone or "UTC"),
    )
