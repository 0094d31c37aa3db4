"""``{{ delta|span }}``: a duration for people ("3 h 5 min"), as the policy words them."""

from __future__ import annotations

import datetime as dt

from django import template

from deployments.lib import presentation

register = template.Library()


@register.filter
def span(value: dt.timedelta | float | None) -> str:
    """A timedelta (or seconds) as '1 day 4 h', '3 h 5 min', '12 min'."""
    if value is None:
        return ""
    if not isinstance(value, dt.timedelta):
        value = dt.timedelta(seconds=float(value))
    return presentation.duration(value)


@register.filter
def window_text(window: object, now: dt.datetime) -> str:
    """A selectors.queue.WindowState described at ``now``."""
    describe = getattr(window, "describe", None)
    return describe(now) if callable(describe) else ""
