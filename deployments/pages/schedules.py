"""Scheduling a ticket's apply from its page (the same services as the API)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.views.decorators.http import require_POST

from deployments import selectors, services
from deployments.lib import presentation
from deployments.pages.actions import (
    Done,
    page_action,
    step_up_for_sensitive_environments,
    to_ticket,
)
from deployments.services import schedules


def parse_local(value: str, zone: str, field: str = "at") -> dt.datetime:
    """A datetime-local value ('2026-11-26T02:30') read in the environment's zone."""
    try:
        naive = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise services.InputError(field, "give a date and time, e.g. 2026-11-26T02:30") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ZoneInfo(zone))


@login_required
@require_POST
@step_up_for_sensitive_environments
@page_action(back=to_ticket())
def ticket_schedule(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    zone = ticket.environment.window_timezone or "UTC"
    next_window = request.POST.get("next_window") == "1"
    at = None if next_window else parse_local(request.POST.get("at", ""), zone)
    done = schedules.ticket_schedule(
        ticket_id=ticket.pk, actor=request.user, at=at, next_window=next_window
    )
    assert done.scheduled_for is not None
    when = presentation.format_in_zone(done.scheduled_for, zone)
    return Done(f"Scheduled for {when}: it starts by itself in the window.")


@login_required
@require_POST
@step_up_for_sensitive_environments
@page_action(back=to_ticket())
def ticket_unschedule(request: HttpRequest, pk: int) -> Done:
    ticket = selectors.ticket_get(request.user, pk)
    schedules.ticket_unschedule(ticket_id=ticket.pk, actor=request.user)
    return Done("Unscheduled: the ticket is approved and will not start by itself.")
