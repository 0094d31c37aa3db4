"""Scheduled deploys and freezes: schedule, unschedule, the beat task's pass, declaring freezes.

Schedules are database rows (``Ticket.scheduled_for`` with status ``scheduled``) read by the
beat task ``deployments.tasks.schedules_run``; never Celery ETA/countdown messages.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import ACTIVE_RUN_STATUSES, ALLOWED_TRANSITIONS, RunKind, TicketStatus
from deployments.lib import presentation, validation
from deployments.models import CalendarFeedToken, Environment, Freeze, TerraformRun, Ticket
from deployments.models.freezes import new_feed_token
from deployments.selectors import stray_approvals, user_roles, votes_for
from deployments.selectors.windows import freezes_for, plan_is_stale, window_of_instant
from deployments.services import notices
from deployments.services._base import InputError, locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.runs.start import apply_start

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


def ticket_schedule(
    *, ticket_id: int, actor: Any, at: dt.datetime | None = None, next_window: bool = False
) -> Ticket:
    """Schedule the approved ticket's apply for ``at`` or for the next window (one click)."""
    if (at is None) == (not next_window):
        raise InputError("at", 'send either "at" (an ISO 8601 instant) or "next_window": true')
    if at is not None and at.tzinfo is None:
        raise InputError("at", "give the time with its UTC offset, e.g. 2026-11-26T02:00-05:00")
    now = timezone.now()
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        env = ticket.environment
        freezes = freezes_for(env, now)
        if at is None:
            at = (
                now if policy.ignores_window(ticket, now) else policy.next_window(env, now, freezes)
            )
            if at is None:
                raise policy.PolicyError(f"{env.name} has no change window opening in 400 days")
        policy.check_may_schedule(
            ticket,
            user_roles=user_roles(actor),
            at=at,
            now=now,
            freezes=freezes,
            stale=plan_is_stale(ticket),
        )
        previous = ticket.scheduled_for
        ticket.scheduled_for = at
        ticket.save(update_fields=["scheduled_for", "updated_at"])
        zone = env.window_timezone or "UTC"
        when = presentation.format_in_zone(at, zone)
        data = {
            "scheduled_for": at.isoformat(),
            "previous": previous.isoformat() if previous else None,
        }
        if ticket.status == TicketStatus.SCHEDULED:
            ticket.status_reason = f"scheduled for {when}"
            ticket.save(update_fields=["status_reason"])
            audit_record(actor=actor, action="ticket.reschedule", ticket=ticket, data=data)
        else:
            transition(
                ticket,
                TicketStatus.SCHEDULED,
                actor=actor,
                reason=f"scheduled for {when}",
                data=data,
            )
        audit_record(actor=actor, action="ticket.schedule", ticket=ticket, data=data)
        return ticket


def ticket_unschedule(*, ticket_id: int, actor: Any) -> Ticket:
    """Take a scheduled ticket back to approved; nothing will start by itself."""
    with transaction.atomic():
        ticket = locked_ticket(ticket_id)
        policy.check_may_unschedule(ticket, user_roles=user_roles(actor))
        previous = ticket.scheduled_for
        ticket.scheduled_for = None
        ticket.save(update_fields=["scheduled_for", "updated_at"])
        transition(
            ticket,
            TicketStatus.APPROVED,
            actor=actor,
            reason=f"unscheduled by {actor.get_username()}",
            data={"previous": previous.isoformat() if previous else None},
        )
        return ticket


def schedulers_of(ticket: Ticket) -> list[Any]:
    """The people who scheduled the ticket (from the audit trail), to be told of a miss."""
    from deployments.models import AuditEvent

    seen: dict[int, Any] = {}
    for event in AuditEvent.objects.filter(
        ticket=ticket, action="ticket.schedule", actor__isnull=False
    ).select_related("actor"):
        if event.actor_id is not None:
            seen.setdefault(event.actor_id, event.actor)
    return list(seen.values())


def _give_back(
    ticket: Ticket,
    reason: str,
    *,
    action: str,
    back_to: TicketStatus = TicketStatus.APPROVED,
    noted: Sequence[tuple[str, dt.datetime]] = (),
) -> None:
    """The scheduled apply will not start: back (to approved) with the reason, audited, told."""
    ticket.scheduled_for = None
    ticket.save(update_fields=["scheduled_for", "updated_at"])
    transition(ticket, back_to, actor=SCHEDULER, reason=reason)
    people = schedulers_of(ticket)
    audit_record(
        actor=SCHEDULER,
        action=action,
        ticket=ticket,
        data={"reason": reason, "told": [p.get_username() for p in people]},
    )
    notices.schedule_missed(ticket, people=people, reason=reason, noted=noted)


def _try_start(ticket: Ticket, now: dt.datetime) -> str:
    """Start one due scheduled ticket if it may start now: 'started', 'wait' or 'given_back'."""
    env = ticket.environment
    freezes = freezes_for(env, now)
    occurrence = window_of_instant(env, ticket.scheduled_for) if ticket.scheduled_for else None
    if not policy.ignores_window(ticket, now) and not policy.in_window(env, now, freezes):
        if policy.Window.of(env) is None:
            return "wait"  # no window: a freeze only delays the start until it ends
        closes = occurrence[1] if occurrence else None
        if closes is not None and now < closes:
            return "wait"  # frozen for now: a freeze may end before the window closes
        why = "it could not start before its change window closed"
        frozen = policy.frozen_by(now, freezes) or next(
            (f for f in freezes if occurrence and f.starts_at < occurrence[1]), None
        )
        if frozen is not None:
            why = f"{env.name} was frozen ({frozen.reason}) until its change window closed"
        _give_back(ticket, f"the scheduled apply was not started: {why}", action="schedule.missed")
        return "given_back"
    if plan_is_stale(ticket):
        _give_back(
            ticket,
            f"the scheduled apply was not started: {policy.STALE_PLAN_MESSAGE}",
            action="schedule.stale",
        )
        return "given_back"
    plan = ticket.current_plan
    noted: list[tuple[str, dt.datetime]] = []
    try:
        if plan is None:
            raise policy.ApplyRefused("there is no plan to apply", TicketStatus.APPROVED)
        with presentation.noting_times() as noted:
            policy.check_apply_may_start(
                ticket,
                now=now,
                plan_sha256=plan.plan_sha256,
                current_plan_sha256=plan.plan_sha256,
                votes=votes_for(ticket, plan),
                stray_approvals=stray_approvals(ticket, plan),
                freezes=freezes,
            )
    except policy.ApplyRefused as refusal:
        # A scheduled ticket goes back to approved (as a refused deploy by hand leaves it),
        # even when the approvals no longer hold: the reason says what it needs.
        _give_back(
            ticket,
            f"the scheduled apply was not started: {refusal.message}",
            action="schedule.refused",
            noted=noted,
            back_to=(
                refusal.back_to
                if refusal.back_to in ALLOWED_TRANSITIONS[TicketStatus.SCHEDULED]
                else TicketStatus.APPROVED
            ),
        )
        return "given_back"
    audit_record(
        actor=SCHEDULER,
        action="schedule.start",
        ticket=ticket,
        data={"scheduled_for": ticket.scheduled_for.isoformat() if ticket.scheduled_for else None},
    )
    apply_start(ticket, actor=SCHEDULER)
    return "started"


def schedules_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of the beat task: per environment, start the first due scheduled ticket (in
    order scheduled_for, id) when nothing else is applying there; give back those whose
    window closed. One at a time per environment: the next waits for the next pass after
    the running apply finishes."""
    now = now or timezone.now()
    counts = {"started": 0, "given_back": 0, "wait": 0}
    env_ids = (
        Ticket.objects.filter(status=TicketStatus.SCHEDULED, scheduled_for__lte=now)
        .values_list("environment_id", flat=True)
        .distinct()
    )
    for env_id in sorted(set(env_ids)):
        while True:
            busy = TerraformRun.objects.filter(
                environment_id=env_id, kind=RunKind.APPLY, status__in=list(ACTIVE_RUN_STATUSES)
            ).exists()
            if busy:
                counts["wait"] += 1
                break
            with transaction.atomic():
                head = (
                    Ticket.objects.filter(
                        environment_id=env_id,
                        status=TicketStatus.SCHEDULED,
                        scheduled_for__lte=now,
                    )
                    .order_by("scheduled_for", "id")
                    .values_list("pk", flat=True)
                    .first()
                )
                if head is None:
                    break
                ticket = locked_ticket(head)
                if ticket.status != TicketStatus.SCHEDULED:
                    continue
                try:
                    with transaction.atomic():  # a refusal leaves nothing half-written
                        outcome = _try_start(ticket, now)
                except policy.PolicyError as exc:  # busy: someone deployed by hand meanwhile
                    log.info("scheduled ticket %s waits: %s", ticket.pk, exc.message)
                    outcome = "wait"
            counts[outcome] += 1
            if outcome != "given_back":
                break
    return counts


def _freeze_data(freeze: Freeze) -> dict[str, Any]:
    return {
        "freeze": freeze.pk,
        "environment": freeze.environment.name,
        "starts_at": freeze.starts_at.isoformat(),
        "ends_at": freeze.ends_at.isoformat(),
        "reason": freeze.reason,
    }


def freeze_check(
    *, actor: Any, environment: Environment, starts_at: dt.datetime, ends_at: dt.datetime
) -> None:
    """Every rule a freeze's declaration or change meets (the admin's form asks it too):
    who may (policy.check_may_manage_freezes, 403) and how long (FREEZE_MAX_DAYS, 400)."""
    policy.check_may_manage_freezes(
        environment, user_roles(actor), superuser=bool(getattr(actor, "is_superuser", False))
    )
    problem = policy.freeze_length_problem(starts_at, ends_at, max_days=settings.FREEZE_MAX_DAYS)
    if problem:
        raise InputError(*problem)


def _clean_reason(reason: str) -> str:
    reason = validation.clean_text(reason, "reason", FREEZE_REASON_MAX).strip()
    if not reason:
        raise InputError("reason", "a freeze needs a reason")
    return reason


FREEZE_REASON_MAX = 200


def freeze_declare(
    *,
    actor: Any,
    environment: Environment,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
) -> Freeze:
    """Declare a freeze (blackout) on an environment, audited."""
    reason = _clean_reason(reason)
    freeze_check(actor=actor, environment=environment, starts_at=starts_at, ends_at=ends_at)
    with transaction.atomic():
        freeze = Freeze.objects.create(
            environment=environment,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            declared_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(actor=actor, action="freeze.declare", data=_freeze_data(freeze))
        return freeze


def freeze_update(
    *,
    actor: Any,
    freeze_id: int,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    reason: str | None = None,
) -> Freeze:
    """Change a freeze's period or reason, audited with before and after; the same rules as
    declaring one (who, and at most FREEZE_MAX_DAYS from start to end)."""
    with transaction.atomic():
        freeze = Freeze.objects.select_for_update().select_related("environment").get(pk=freeze_id)
        before = _freeze_data(freeze)
        new_starts = starts_at or freeze.starts_at
        new_ends = ends_at or freeze.ends_at
        freeze_check(
            actor=actor, environment=freeze.environment, starts_at=new_starts, ends_at=new_ends
        )
        freeze.starts_at, freeze.ends_at = new_starts, new_ends
        if reason is not None:
            freeze.reason = _clean_reason(reason)
        freeze.save(update_fields=["starts_at", "ends_at", "reason"])
        audit_record(
            actor=actor,
            action="freeze.update",
            data={
                **_freeze_data(freeze),
                "before": {k: before[k] for k in ("starts_at", "ends_at", "reason")},
            },
        )
        return freeze


def freeze_lift(*, actor: Any, freeze_id: int, reason: str) -> Freeze | None:
    """Lift a freeze, with a reason, audited: one in force ends now (``freeze.lift`` with
    ``early`` and the end it had); one not started yet is withdrawn (its row deleted, the
    event keeps it). Returns the freeze as it stays, or None when withdrawn."""
    reason = validation.clean_text(reason, "reason", FREEZE_REASON_MAX).strip()
    if not reason:
        raise InputError("reason", "say why the freeze is lifted")
    with transaction.atomic():
        freeze = Freeze.objects.select_for_update().select_related("environment").get(pk=freeze_id)
        policy.check_may_manage_freezes(
            freeze.environment,
            user_roles(actor),
            superuser=bool(getattr(actor, "is_superuser", False)),
        )
        now = timezone.now()
        how = policy.check_may_lift_freeze(freeze.starts_at, freeze.ends_at, now)
        data = {**_freeze_data(freeze), "lift_reason": reason, "lifted_at": now.isoformat()}
        if how == "early":
            freeze.ends_at = now
            freeze.save(update_fields=["ends_at"])
            audit_record(actor=actor, action="freeze.lift", data={**data, "early": True})
            return freeze
        audit_record(
            actor=actor, action="freeze.lift", data={**data, "early": False, "withdrawn": True}
        )
        freeze.delete()
        return None


def freeze_save(*, actor: Any, freeze: Freeze) -> Freeze:
    """Create or change a freeze from the admin, audited with before and after."""
    if not freeze.reason.strip():
        raise InputError("reason", "a freeze needs a reason")
    freeze_check(
        actor=actor,
        environment=freeze.environment,
        starts_at=freeze.starts_at,
        ends_at=freeze.ends_at,
    )
    with transaction.atomic():
        before = (
            Freeze.objects.select_for_update().filter(pk=freeze.pk).first() if freeze.pk else None
        )
        if before is not None and before.environment_id != freeze.environment_id:
            # Moving a freeze takes it away from one environment too.
            freeze_check(
                actor=actor,
                environment=before.environment,
                starts_at=freeze.starts_at,
                ends_at=freeze.ends_at,
            )
        if before is None and getattr(actor, "pk", None) and freeze.declared_by_id is None:
            freeze.declared_by = actor
        freeze.save()
        audit_record(
            actor=actor,
            action="freeze.declare" if before is None else "freeze.update",
            data={
                **_freeze_data(freeze),
                **(
                    {
                        "before": {
                            "starts_at": before.starts_at.isoformat(),
                            "ends_at": before.ends_at.isoformat(),
                            "reason": before.reason,
                        }
                    }
                    if before
                    else {}
                ),
            },
        )
        return freeze


def freeze_delete(*, actor: Any, freeze: Freeze) -> None:
    """Delete a freeze from the admin, audited; one in force counts as lifted early."""
    policy.check_may_manage_freezes(
        freeze.environment, user_roles(actor), superuser=bool(getattr(actor, "is_superuser", False))
    )
    now = timezone.now()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="freeze.delete",
            data={**_freeze_data(freeze), "early": freeze.starts_at <= now < freeze.ends_at},
        )
        freeze.delete()


def calendar_token_rotate(*, actor: Any) -> bool:
    """Create or rotate ``actor``'s calendar feed token (old feed URLs stop working),
    audited. True when it was created."""
    with transaction.atomic():
        token, created = CalendarFeedToken.objects.select_for_update().get_or_create(
            user_id=actor.pk
        )
        if not created:
            token.token = new_feed_token()
            token.save(update_fields=["token", "created_at"])
        audit_record(
            actor=actor,
            action="calendar.feed_token." + ("create" if created else "rotate"),
            data={},
        )
    return created
