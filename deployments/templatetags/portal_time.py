"""``{{ value|usertime }}``: a time in the viewer's zone, with UTC on hover;
``{{ permission|reason }}``: a refusal with the times it names in the viewer's zone."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from deployments.lib.presentation import format_for_reader, noted_parts

register = template.Library()


@register.filter
def usertime(value: dt.datetime | None, style: str = "") -> SafeString | str:
    """<time datetime="UTC ISO" title="UTC text">local text in the viewer's zone</time>;
    ``|usertime:"short"`` drops the seconds, ``|usertime:"clock"`` the date too."""
    if not isinstance(value, dt.datetime):
        return ""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    utc = value.astimezone(dt.UTC)
    local = timezone.localtime(value)
    fmt = {"short": "%Y-%m-%d %H:%M", "clock": "%H:%M"}.get(style, "%Y-%m-%d %H:%M:%S")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M UTC" if style == "clock" else f"{fmt} UTC"),
        f"{local.strftime(fmt)} {local.tzname()}",
    )


@register.filter
def userspan(start: dt.datetime | None, end: dt.datetime | None) -> SafeString | str:
    """'2026-11-26 12:30 IST - 14:30 IST' (an en dash) in the viewer's zone, the end's
    date only when it falls on another day; UTC on hover."""
    if not isinstance(start, dt.datetime):
        return ""
    if not isinstance(end, dt.datetime):
        return usertime(start, "short")
    same_day = timezone.localtime(start).date() == timezone.localtime(end).date()
    return format_html(
        "{} \u2013 {}", usertime(start, "short"), usertime(end, "clock" if same_day else "short")
    )


@register.filter
def reason(permission: object) -> SafeString:
    """A refusal's sentence (selectors.tickets.Permission) with each time its rules wrote in
    the environment's zone shown in the viewer's; the written text stays on hover."""
    text = str(getattr(permission, "reason", "") or "")
    zone = timezone.get_current_timezone_name()
    return mark_safe(  # noqa: S308 (each part is escaped or built by format_html)
        "".join(
            str(escape(piece))
            if moment is None
            else format_html(
                '<time datetime="{}" title="{}">{}</time>',
                moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                piece,
                format_for_reader(moment, zone),
            )
            for piece, moment in noted_parts(text, getattr(permission, "noted", ()) or ())
        )
    )


@register.filter
def fu_overdue(follow_up: object, now: dt.datetime) -> bool:
    """Whether a follow-up is past its deadline and not done."""
    is_overdue = getattr(follow_up, "is_overdue", None)
    return bool(is_overdue(now)) if callable(is_overdue) else False
