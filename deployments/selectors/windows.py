"""Reads for windows, freezes, schedules and stale plans (scoped like deployments.selectors)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments import policy
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, Freeze, TerraformRun, Ticket


def freezes_for(
    env: Environment | int, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Freeze]:
    """The environment's freezes overlapping [start, end) (all future ones by default)."""
    env_id = env if isinstance(env, int) else env.pk
    rows = Freeze.objects.filter(environment_id=env_id).select_related("declared_by")
    if start is not None:
        rows = rows.filter(ends_at__gt=start)
    if end is not None:
        rows = rows.filter(starts_at__lt=end)
    return list(rows.order_by("starts_at", "id"))


def freezes_by_environment(
    env_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, list[Freeze]]:
    """freezes_for over [start, end) for several environments in one query."""
    found: dict[int, list[Freeze]] = {pk: [] for pk in env_ids}
    for freeze in (
        Freeze.objects.filter(environment_id__in=env_ids, ends_at__gt=start, starts_at__lt=end)
        .select_related("declared_by")
        .order_by("starts_at", "id")
    ):
        found[freeze.environment_id].append(freeze)
    return found


# The statuses in which a ticket's plan may still be applied (and so can go stale).
PLAN_PENDING = frozenset(
    {TicketStatus.AWAITING_APPROVAL, TicketStatus.APPROVED, TicketStatus.SCHEDULED}
)


def stale_plan_expression() -> Exists:
    """plan_is_stale as an annotation of a ticket query (one query for a list of tickets):
    ``Ticket.objects.annotate(plan_stale=stale_plan_expression())``. The status test is the
    caller's (only tickets in PLAN_PENDING have a plan waiting to be applied)."""
    since = Coalesce(OuterRef("current_plan__finished_at"), OuterRef("current_plan__created_at"))
    changed = Q(status__in=(RunStatus.SUCCEEDED, RunStatus.INTERRUPTED)) | (
        Q(status=RunStatus.FAILED, deployment__isnull=False)
        & (
            ~Q(deployment__state_after=OuterRef("current_plan__base_state"))
            | Q(deployment__state_after="")
        )
    )
    return Exists(
        TerraformRun.objects.filter(
            environment_id=OuterRef("environment_id"),
            kind=RunKind.APPLY,
            finished_at__gt=since,
        )
        .filter(changed)
        .exclude(ticket_id=OuterRef("pk"))
    )


def annotated_stale(ticket: Ticket) -> bool:
    """The ``plan_stale`` annotation read as plan_is_stale would answer."""
    plan = ticket.current_plan
    return bool(
        getattr(ticket, "plan_stale", False)
        and ticket.status in PLAN_PENDING
        and plan is not None
        and plan.status == RunStatus.SUCCEEDED
    )


def plan_is_stale(ticket: Ticket) -> bool:
    """Has another apply changed the environment's state since this ticket's plan was made?

    True as soon as an apply of another ticket on the same environment finished after the
    plan and changed (or may have changed) the state the plan started from: succeeded,
    interrupted, or failed leaving another or an unknown state. That plan would be refused
    as stale, so it needs a re-plan before anyone schedules it."""
    if ticket.status not in PLAN_PENDING:
        return False  # nothing will apply this plan any more (applied, failed, closed)
    plan = ticket.current_plan
    if plan is None or plan.status != RunStatus.SUCCEEDED:
        return False
    since = plan.finished_at or plan.created_at
    # A failed apply may have changed part of the state before it stopped: it counts unless
    # the state it left is known to be the one this plan started from (one refused before
    # Terraform ran is no deployment and changed nothing). An interrupted one left an
    # unknown state.
    changed = Q(status__in=(RunStatus.SUCCEEDED, RunStatus.INTERRUPTED)) | (
        Q(status=RunStatus.FAILED, deployment__isnull=False)
        & (~Q(deployment__state_after=plan.base_state) | Q(deployment__state_after=""))
    )
    return (
        TerraformRun.objects.filter(
            environment_id=ticket.environment_id,
            kind=RunKind.APPLY,
            finished_at__gt=since,
        )
        .filter(changed)
        .exclude(ticket_id=ticket.pk)
        .exists()
    )


def window_of_instant(env: Environment, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The window occurrence containing ``at`` (or None without a window / outside one)."""
    for opens, closes in policy.window_occurrences(
        env, at - dt.timedelta(days=2), at + dt.timedelta(days=1)
    ):
        if opens <= at < closes:
            return opens, closes
    return None


@dataclass(frozen=True)
class Conflict:
    """Tickets scheduled into the same window occurrence of one environment, in run order."""

    environment: str
    opens: dt.datetime | None
    closes: dt.datetime | None
    tickets: tuple[Ticket, ...]

    def position(self, ticket: Ticket) -> int:
        return 1 + [t.pk for t in self.tickets].index(ticket.pk)


def scheduled_tickets(env: Environment) -> list[Ticket]:
    """The environment's scheduled tickets in the order the beat task starts them."""
    return list(
        Ticket.objects.filter(environment=env, status=TicketStatus.SCHEDULED)
        .select_related("environment", "author")
        .order_by("scheduled_for", "id")
    )


def schedule_conflicts(tickets: list[Ticket]) -> list[Conflict]:
    """Group scheduled tickets of one environment by the window occurrence they fall in;
    a group of two or more is a conflict (they will run one after the other)."""
    groups: dict[Any, list[Ticket]] = {}
    bounds: dict[Any, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for ticket in tickets:
        if ticket.scheduled_for is None:
            continue
        occurrence = window_of_instant(ticket.environment, ticket.scheduled_for)
        key = (ticket.environment_id, occurrence[0] if occurrence else ticket.scheduled_for)
        groups.setdefault(key, []).append(ticket)
        bounds[key] = occurrence or (None, None)
    return [
        Conflict(
            environment=members[0].environment.name,
            opens=bounds[key][0],
            closes=bounds[key][1],
            tickets=tuple(sorted(members, key=lambda t: (t.scheduled_for, t.pk))),
        )
        for key, members in groups.items()
        if len(members) > 1
    ]


def conflict_for(ticket: Ticket) -> Conflict | None:
    """The conflict this scheduled ticket is part of, if any."""
    if ticket.status != TicketStatus.SCHEDULED:
        return None
    for conflict in schedule_conflicts(scheduled_tickets(ticket.environment)):
        if any(t.pk == ticket.pk for t in conflict.tickets):
            return conflict
    return None


def environment_window_state(env: Environment, now: dt.datetime | None = None) -> dict[str, Any]:
    """Window, freezes and the next opening, as the API and pages show them."""
    now = now or timezone.now()
    freezes = freezes_for(env, now)
    current = [f for f in freezes if f.starts_at <= now]
    upcoming = [f for f in freezes if f.starts_at > now]
    return {
        "in_window_now": policy.in_window(env, now, freezes),
        "next_window_start": policy.next_window_start(env, now, freezes),
        "current_freezes": current,
        "upcoming_freezes": upcoming,
    }
