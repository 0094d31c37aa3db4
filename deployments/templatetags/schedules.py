"""Template helpers for windows and schedules: times in their own zone with UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from deployments import policy, selectors
from deployments.choices import TicketStatus
from deployments.selectors_windows import freezes_for, plan_is_stale

register = template.Library()


@register.filter
def in_zone(moment: dt.datetime | None, zone: str) -> str:
    """'Thu 26 Nov 02:00 EST (07:00 UTC)'."""
    if moment is None:
        return ""
    return policy.format_in_zone(moment, zone or "UTC")


@register.simple_tag(takes_context=True)
def ticket_schedule_info(context: Any, ticket: Any) -> dict[str, Any]:
    """What the schedule section of the ticket page shows this user."""
    user = context["request"].user
    env = ticket.environment
    now = timezone.now()
    freezes = freezes_for(env, now)
    roles = selectors.user_roles(user)
    may_deploy = bool(set(roles) & set(env.deploy_groups))
    status = TicketStatus(ticket.status)
    next_open = policy.next_window(env, now, freezes) if policy.Window.of(env) else None
    frozen = (
        policy.frozen_by(ticket.scheduled_for, freezes)
        if status == TicketStatus.SCHEDULED
        and ticket.scheduled_for is not None
        and not policy.ignores_window(ticket, ticket.scheduled_for)
        else None
    )
    return {
        "frozen_at_schedule": frozen,
        "zone": env.window_timezone or "UTC",
        "window": policy.Window.of(env),
        "stale": plan_is_stale(ticket),
        "conflict": selectors.conflict_seen_by(user, ticket),
        "next_window": next_open,
        "can_schedule": may_deploy and status == TicketStatus.APPROVED,
        "can_reschedule": may_deploy and status == TicketStatus.SCHEDULED,
        "relevant": status in (TicketStatus.APPROVED, TicketStatus.SCHEDULED),
        "freezes": freezes,
    }
