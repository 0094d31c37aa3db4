"""Follow-ups: opening them after a change, completing them, reminding about overdue ones;
and the emergency path (its wording and recipients are in notices.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments.lib import validation
from deployments.models import FollowUp, FollowUpKind, TerraformRun, Ticket
from deployments.selectors import user_roles
from deployments.services import notices
from deployments.services._base import InputError
from deployments.services.audit import audit_record

REVIEW_FIELDS = ("what_happened", "impact", "root_cause", "actions")

# Kept importable from here (callers written before notices.py existed).


def emergency_filed(ticket: Ticket) -> None:
    """An emergency is filed (inside the filing transaction): it must say why it cannot wait
    for the window (its description, shown on its banner); every emergency approver of the
    environment is told at once."""
    if not ticket.description.strip():
        raise InputError(
            "description",
            "an emergency change needs a description saying why it cannot wait for the "
            "change window (it is shown on the ticket's emergency banner)",
        )
    notices.emergency_filed(ticket)


def follow_up_open(
    *,
    ticket: Ticket,
    kind: str,
    due_at: dt.datetime,
    actor: Any,
    deployment_run: TerraformRun | None = None,
) -> FollowUp:
    """Open a follow-up for a (locked) ticket; a second call for the same deployment returns
    the first one. Audited; the follow-up roles are told what is due and when."""
    if kind not in FollowUpKind.values:
        raise InputError("kind", f"kind must be one of {', '.join(FollowUpKind.values)}")
    with transaction.atomic():
        existing = FollowUp.objects.filter(
            ticket=ticket, kind=kind, deployment_run=deployment_run
        ).first()
        if existing is not None:
            return existing
        follow_up = FollowUp.objects.create(
            ticket=ticket, kind=kind, due_at=due_at, deployment_run=deployment_run
        )
        audit_record(
            actor=actor,
            action="followup.open",
            ticket=ticket,
            data={
                "follow_up": follow_up.pk,
                "follow_up_kind": kind,
                "due_at": due_at.isoformat(),
                "deployment_run": deployment_run.pk if deployment_run else None,
            },
        )
        notices.followup_due(ticket, follow_up)
        return follow_up


def follow_up_complete(
    *,
    follow_up_id: int,
    actor: Any,
    what_happened: str,
    impact: str,
    root_cause: str,
    actions: str,
) -> FollowUp:
    """A Tech Lead or DevOps Lead records the review; 403 for others, 409 when already done,
    400 naming every empty field. Nothing is written on refusal."""
    values = {
        "what_happened": what_happened,
        "impact": impact,
        "root_cause": root_cause,
        "actions": actions,
    }
    with transaction.atomic():
        follow_up = (
            FollowUp.objects.select_for_update().select_related("ticket").get(pk=follow_up_id)
        )
        policy.check_may_complete_follow_up(
            done=follow_up.done_at is not None,
            kind_label=follow_up.get_kind_display(),
            user_roles=user_roles(actor),
            superuser=bool(actor.is_superuser),
        )
        cleaned = {
            name: validation.clean_text(value, name, validation.DESCRIPTION_MAX).strip()
            for name, value in values.items()
        }
        empty = [name for name, value in cleaned.items() if not value]
        if empty:
            raise InputError(empty[0], f"fill in {', '.join(empty)}")
        now = timezone.now()
        for name, value in cleaned.items():
            setattr(follow_up, name, value)
        follow_up.done_at = now
        follow_up.completed_by = actor
        follow_up.save(update_fields=[*REVIEW_FIELDS, "done_at", "completed_by"])
        audit_record(
            actor=actor,
            action="followup.complete",
            ticket=follow_up.ticket,
            data={
                "follow_up": follow_up.pk,
                "follow_up_kind": follow_up.kind,
                "late": now > follow_up.due_at,
                **cleaned,
            },
        )
        return follow_up


def follow_ups_remind(*, now: dt.datetime | None = None) -> int:
    """Re-notify the leads about every overdue follow-up not reminded in the last day."""
    now = now or timezone.now()
    sent = 0
    candidates = FollowUp.objects.filter(done_at__isnull=True, due_at__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(candidates):
        with transaction.atomic():
            follow_up = (
                FollowUp.objects.select_for_update()
                .select_related("ticket", "ticket__environment")
                .get(pk=pk)
            )
            if not policy.follow_up_reminder_due(
                due_at=follow_up.due_at,
                done_at=follow_up.done_at,
                last_reminded_at=follow_up.last_reminded_at,
                now=now,
            ):
                continue
            follow_up.last_reminded_at = now
            follow_up.save(update_fields=["last_reminded_at"])
            ticket = follow_up.ticket
            late = now - follow_up.due_at
            hours = int(late.total_seconds() // 3600)
            audit_record(
                actor="system",
                action="followup.remind",
                ticket=ticket,
                data={"follow_up": follow_up.pk, "overdue_hours": hours},
            )
            notices.followup_overdue(ticket, follow_up, hours=hours)
            sent += 1
    return sent


def emergency_deployed(ticket: Ticket, run: TerraformRun) -> None:
    """After a successful emergency apply: the post-deployment review, due 24 h later."""
    if not policy.is_emergency(ticket):
        return
    finished = run.finished_at or timezone.now()
    follow_up_open(
        ticket=ticket,
        kind=FollowUpKind.POST_DEPLOYMENT_REVIEW,
        due_at=finished + policy.EMERGENCY_REVIEW_DUE,
        actor="worker",
        deployment_run=run,
    )
