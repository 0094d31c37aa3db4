"""The change calendar: windows, freezes, scheduled tickets (with their conflicts) and
past deployments, for the environments and tickets a user may see."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from deployments import policy
from deployments.choices import TicketStatus
from deployments.lib import presentation
from deployments.models import Ticket
from deployments.selectors.access import environments_visible_to, tickets_visible_to
from deployments.selectors.windows import (
    annotated_stale,
    freezes_by_environment,
    schedule_conflicts,
    stale_plan_expression,
)


@dataclass
class Entry:
    """One thing on the calendar."""

    kind: str  # window | freeze | scheduled | deployed
    starts: dt.datetime
    ends: dt.datetime | None
    environment: str
    title: str
    text: str
    url: str = ""
    conflict: str = ""
    status: str = ""  # a deployed ticket's status now
    stale: bool = False  # a scheduled ticket whose plan another deploy made stale


def _when(moment: dt.datetime, zone: str) -> str:
    return presentation.format_in_zone(moment, zone)


def _titled(ticket: Any) -> str:
    """``#12 Title``, with the stack when it is not the default one (docs/stacks.md)."""
    stack = ticket.stack.name
    return (
        f"#{ticket.pk} [{stack}] {ticket.title}"
        if stack != "default"
        else (f"#{ticket.pk} {ticket.title}")
    )


def calendar_entries(user: Any, start: dt.datetime, end: dt.datetime) -> list[Entry]:
    """Windows, freezes, scheduled tickets (with conflicts) and past deployments in
    [start, end), for the environments and tickets this user may see."""
    entries: list[Entry] = []
    envs = environments_visible_to(user)
    visible = tickets_visible_to(user)
    # One query per kind of entry for every environment (not one per environment).
    env_ids = [env.pk for env in envs]
    freezes = freezes_by_environment(env_ids, start, end)
    scheduled_all: list[Ticket] = list(
        visible.filter(
            environment_id__in=env_ids,
            status=TicketStatus.SCHEDULED,
            scheduled_for__gte=start,
            scheduled_for__lt=end,
        )
        .select_related("current_plan")
        .annotate(plan_stale=stale_plan_expression())
        .order_by("scheduled_for", "id")
    )
    deployed_all = list(
        visible.filter(
            environment_id__in=env_ids, deployed_at__gte=start, deployed_at__lt=end
        ).order_by("deployed_at", "id")
    )
    for env in envs:
        zone = env.window_timezone or "UTC"
        window = policy.Window.of(env)
        for opens, closes in policy.window_occurrences(env, start, end):
            entries.append(
                Entry(
                    "window",
                    opens,
                    closes,
                    env.name,
                    f"{env.name} change window",
                    f"{_when(opens, zone)} \u2013 {_when(closes, zone)}"
                    + (f" ({window.describe()})" if window else ""),
                )
            )
        for freeze in freezes[env.pk]:
            entries.append(
                Entry(
                    "freeze",
                    freeze.starts_at,
                    freeze.ends_at,
                    env.name,
                    f"{env.name} freeze: {freeze.reason}",
                    f"{_when(freeze.starts_at, zone)} \u2013 {_when(freeze.ends_at, zone)}",
                )
            )
        scheduled = [t for t in scheduled_all if t.environment_id == env.pk]
        conflicted: dict[int, str] = {}
        for conflict in schedule_conflicts(scheduled):
            order = ", ".join(f"#{t.pk}" for t in conflict.tickets)
            for t in conflict.tickets:
                conflicted[t.pk] = (
                    f"conflict: {len(conflict.tickets)} tickets in this window, "
                    f"run in order {order}"
                )
        for ticket in scheduled:
            assert ticket.scheduled_for is not None
            stale = annotated_stale(ticket)
            entries.append(
                Entry(
                    "scheduled",
                    ticket.scheduled_for,
                    None,
                    env.name,
                    _titled(ticket),
                    f"scheduled {_when(ticket.scheduled_for, zone)}"
                    + (" — plan stale: re-plan needed, it will not start as is" if stale else ""),
                    reverse("ticket_detail", args=[ticket.pk]),
                    conflicted.get(ticket.pk, ""),
                    stale=stale,
                )
            )
        for ticket in (t for t in deployed_all if t.environment_id == env.pk):
            assert ticket.deployed_at is not None
            entries.append(
                Entry(
                    "deployed",
                    ticket.deployed_at,
                    None,
                    env.name,
                    _titled(ticket),
                    f"deployed {_when(ticket.deployed_at, zone)} ({ticket.get_status_display()})",
                    reverse("ticket_detail", args=[ticket.pk]),
                    status=ticket.get_status_display(),
                )
            )
    return sorted(entries, key=lambda e: (e.starts, e.kind, e.title))


def next_window_opening(user: Any, now: dt.datetime) -> dt.datetime | None:
    """The soonest moment a change window of an environment the user sees opens (or is
    open: ``now``), freezes applied: where the calendar opens. None without windows."""
    envs = [env for env in environments_visible_to(user) if policy.Window.of(env) is not None]
    # next_window looks up to 400 days ahead; so do the freezes it steps over.
    freezes = freezes_by_environment([e.pk for e in envs], now, now + dt.timedelta(days=400))
    found = [
        moment
        for env in envs
        if (moment := policy.next_window(env, now, freezes.get(env.pk, []))) is not None
    ]
    return min(found, default=None)
