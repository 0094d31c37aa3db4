"""Stale scheduled plans (issue 22): warn the moment another deploy makes a scheduled
ticket's plan stale, and keep its slot across the re-plan ("re-plan and re-schedule" in one
step): once the new plan is approved the ticket is scheduled again for the same instant if
that is still allowed; otherwise the people who scheduled it are told to pick another. A
schedule is never dropped silently: every move is audited and told.

A re-plan to no changes (+0 ~0 -0) still needs its approvals: the process document asks
two-person review of every production deployment and the portal binds approvals to one
plan (SPEC invariant 1); it keeps the slot, so the approvers' two clicks are all it costs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import TicketStatus
from deployments.lib import presentation
from deployments.models import AuditEvent, PendingReschedule, TerraformRun, Ticket
from deployments.selectors import user_roles
from deployments.selectors.windows import annotated_stale, freezes_for, stale_plan_expression
from deployments.services import notices
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.schedules import SCHEDULER, schedulers_of
from notifications import times


def _when(ticket: Ticket, at: dt.datetime) -> str:
    """The slot as each reader of the message reads it (notifications.times)."""
    return times.stamp(at)


def _local(ticket: Ticket, at: dt.datetime) -> str:
    """The slot in the environment's zone, for what is stored (reasons, the audit)."""
    return presentation.format_in_zone(at, ticket.environment.window_timezone or "UTC")


def _people(ticket: Ticket, *extra: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for person in [*schedulers_of(ticket), *extra]:
        if person is not None and getattr(person, "pk", None):
            seen.setdefault(person.pk, person)
    return list(seen.values())


def schedules_plan_stale(ticket: Ticket, run: TerraformRun) -> None:
    """After an apply (services.lifecycle.after_apply): every other scheduled ticket of the
    environment whose plan this apply made stale is flagged once (audited) and the people
    who scheduled it are told, with the one-step way out."""
    stale = [
        other
        for other in Ticket.objects.filter(
            environment_id=ticket.environment_id, status=TicketStatus.SCHEDULED
        )
        .exclude(pk=ticket.pk)
        .select_related("environment", "current_plan", "author")
        .annotate(plan_stale=stale_plan_expression())
        if annotated_stale(other)
    ]
    for other in stale:
        plan_id = other.current_plan_id
        if AuditEvent.objects.filter(
            ticket=other, action="schedule.plan_stale", data__plan_run=plan_id
        ).exists():
            continue  # told already for this plan
        people = _people(other)
        when = _when(other, other.scheduled_for) if other.scheduled_for else "its slot"
        reason = (
            f"ticket #{ticket.pk} deployed to {ticket.environment.name} after this plan was "
            f"made, so the plan is stale and the apply scheduled for {when} would be refused. "
            "Re-plan and re-schedule it in one step on the ticket page: the slot is kept once "
            "the new plan is approved."
        )
        audit_record(
            actor="worker",
            action="schedule.plan_stale",
            ticket=other,
            data={
                "plan_run": plan_id,
                "by_run": run.pk,
                "by_ticket": ticket.pk,
                "scheduled_for": other.scheduled_for.isoformat() if other.scheduled_for else None,
                "told": [p.get_username() for p in people],
            },
        )
        notices.schedule_plan_stale(other, people=people, reason=reason)


def ticket_replan_reschedule(*, ticket_id: int, actor: Any, reason: str = "") -> TerraformRun:
    """Re-plan a scheduled ticket and keep its slot: the new plan is approved as any plan
    is, then the ticket is scheduled again for the same instant if it is still allowed."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        if ticket.status != TicketStatus.SCHEDULED or ticket.scheduled_for is None:
            raise policy.PolicyError(
                "only a scheduled ticket can be re-planned and re-scheduled; this one is "
                f"{ticket.get_status_display().lower()}"
            )
        at = ticket.scheduled_for
        why = reason.strip() or (
            f"re-plan and re-schedule: keep the slot {_local(ticket, at)}; the plan was stale"
        )
        from deployments.services.tickets import ticket_plan  # tickets → approvals → here

        run = ticket_plan(ticket_id=ticket.pk, actor=actor, reason=why[:200])
        PendingReschedule.objects.update_or_create(
            ticket=ticket, defaults={"at": at, "scheduler": _scheduler(ticket, actor)}
        )
        audit_record(
            actor=actor,
            action="schedule.replan",
            ticket=ticket,
            data={"run": run.pk, "keep_slot": at.isoformat(), "reason": why},
        )
        return run


def _scheduler(ticket: Ticket, fallback: Any) -> Any:
    people = schedulers_of(ticket)
    return people[-1] if people else fallback


def schedule_carry(ticket: Ticket, run: TerraformRun) -> None:
    """After a plan (services.lifecycle.after_plan, after the approval route): a ticket
    re-planned while scheduled keeps its slot as a pending re-schedule, applied now when
    the plan needs no approval, else once it is approved (schedule_on_approval)."""
    pending = PendingReschedule.objects.filter(ticket=ticket).first()
    if ticket.scheduled_for is not None and ticket.status != TicketStatus.SCHEDULED:
        at = ticket.scheduled_for
        ticket.scheduled_for = None
        ticket.save(update_fields=["scheduled_for", "updated_at"])
        if pending is None:
            pending = PendingReschedule.objects.create(
                ticket=ticket, at=at, scheduler=_scheduler(ticket, None)
            )
    if pending is None:
        return
    if ticket.status == TicketStatus.APPROVED:
        _reschedule(ticket, pending, now=timezone.now())
        return
    people = _people(ticket, pending.scheduler)
    summary = run.summary or {}
    changes = f"+{summary.get('add', 0)} ~{summary.get('change', 0)} -{summary.get('destroy', 0)}"
    text = (
        f"#{ticket.pk} was re-planned ({changes}). Its slot {_when(ticket, pending.at)} is kept: "
        "the ticket is scheduled again for it as soon as the new plan is approved"
        + (
            " (a plan with no changes still needs its approvals: every deployment is reviewed)"
            if changes == "+0 ~0 -0"
            else ""
        )
        + "."
    )
    audit_record(
        actor="worker",
        action="schedule.pending",
        ticket=ticket,
        data={
            "at": pending.at.isoformat(),
            "run": run.pk,
            "changes": changes,
            "told": [p.get_username() for p in people],
        },
    )
    notices.schedule_carried(ticket, people=people, text=text)


def schedule_on_approval(ticket: Ticket, *, now: dt.datetime) -> None:
    """After the approval that made the ticket approved: its kept slot, if any."""
    pending = PendingReschedule.objects.filter(ticket=ticket).first()
    if pending is not None and ticket.status == TicketStatus.APPROVED:
        _reschedule(ticket, pending, now=now)


def _reschedule(ticket: Ticket, pending: PendingReschedule, *, now: dt.datetime) -> None:
    at, scheduler = pending.at, pending.scheduler
    people = _people(ticket, scheduler)
    pending.delete()
    try:
        if scheduler is None:
            raise policy.PolicyError("nobody who may deploy scheduled it")
        policy.check_may_schedule(
            ticket,
            user_roles=user_roles(scheduler),
            at=at,
            now=now,
            freezes=freezes_for(ticket.environment, now),
        )
    except policy.PolicyError as exc:
        text = (
            f"#{ticket.pk} is approved again, but its slot {_when(ticket, at)} could not be "
            f"kept: {exc.message}. It waits, approved, for someone to schedule or deploy it."
        )
        audit_record(
            actor=SCHEDULER,
            action="schedule.dropped",
            ticket=ticket,
            data={
                "at": at.isoformat(),
                "reason": exc.message,
                "told": [p.get_username() for p in people],
            },
        )
        notices.schedule_carried(ticket, people=people, text=text)
        return
    ticket.scheduled_for = at
    ticket.save(update_fields=["scheduled_for", "updated_at"])
    data = {
        "scheduled_for": at.isoformat(),
        "kept_from_replan": True,
        "on_behalf_of": scheduler.get_username() if scheduler else None,
    }
    transition(
        ticket,
        TicketStatus.SCHEDULED,
        actor=SCHEDULER,
        reason=f"scheduled again for {_local(ticket, at)} (the slot kept across the re-plan)",
        data=data,
    )
    audit_record(actor=SCHEDULER, action="ticket.schedule", ticket=ticket, data=data)
    notices.schedule_carried(
        ticket,
        people=people,
        text=f"#{ticket.pk} is approved again and scheduled for its kept slot {_when(ticket, at)}.",
    )
