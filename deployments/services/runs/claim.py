"""Claiming a queued run: a guarded update (a duplicate delivery finds nothing to claim), and
for an apply the start-time re-check and a fencing token, under the environment lock."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments import policy
from deployments.choices import RunStatus, TicketStatus
from deployments.lib import clock, presentation
from deployments.models import Environment, TerraformRun, Ticket
from deployments.selectors.approvals import stray_approvals, votes_for
from deployments.selectors.policies import policy_state
from deployments.selectors.stacks import upstream_states
from deployments.selectors.windows import freezes_for
from deployments.services import notices
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.runs.branch import branch_check, branch_record
from deployments.services.schedules import schedulers_of

log = logging.getLogger(__name__)


def claim(run_id: int, *, worker: str, fence: int) -> bool:
    now = timezone.now()
    with transaction.atomic():
        claimed = TerraformRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker, fence=fence
        )
        if not claimed:
            log.info("run %s is not queued any more; nothing to do", run_id)
            return False
        run = TerraformRun.objects.select_related("ticket").get(pk=run_id)
        audit_record(
            actor="worker",
            action="run.start",
            ticket=run.ticket,
            data={"run": run.pk, "kind": run.kind, "worker": worker, "fence": fence},
        )
    return True


def claim_apply(run_id: int, *, worker: str) -> int | None:
    """Re-check and claim an apply under the environment lock; its fencing token, or None
    when it is not queued any more or may not start (then it ends cancelled)."""
    now = clock.now()
    queued = TerraformRun.objects.select_related("environment").get(pk=run_id)
    # Asked before the transaction: a remote repository is fetched first.
    on_branch = branch_check(queued.environment, queued.commit_sha)
    with transaction.atomic():
        ticket_id = TerraformRun.objects.values_list("ticket_id", flat=True).get(pk=run_id)
        ticket = locked_ticket(ticket_id)  # lock order: ticket → run → audit head
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            return None
        branch_record(ticket, on_branch, run=run, moment="apply start")
        try:
            with presentation.noting_times() as noted:
                recheck_start(ticket, run, now=now)
        except policy.ApplyRefused as refusal:
            refuse_start(ticket, run, refusal, noted=noted)
            return None
        Environment.objects.filter(pk=run.environment_id).update(apply_fence=F("apply_fence") + 1)
        fence = Environment.objects.values_list("apply_fence", flat=True).get(pk=run.environment_id)
        if not claim(run_id, worker=worker, fence=fence):
            return None
    return fence


def recheck_start(ticket: Ticket, run: TerraformRun, *, now: dt.datetime) -> None:
    """The worker's re-check at the moment the apply would start (SPEC §3.4)."""
    assert run.plan_id is not None
    plan = TerraformRun.objects.get(pk=run.plan_id)
    current = ticket.current_plan if ticket.current_plan_id == plan.pk else None
    policy.check_apply_may_start(
        ticket,
        now=now,
        plan_sha256=plan.plan_sha256,
        current_plan_sha256=current.plan_sha256 if current else "",
        votes=votes_for(ticket, plan),
        stray_approvals=stray_approvals(ticket, plan),
        freezes=freezes_for(ticket.environment_id, now),
        branch=settings.INFRA_BRANCH,
    )
    policy.plan_policies.check_apply_policies(*policy_state(plan))
    # A stack it depends on may have started deploying since the apply was asked for.
    waiting = [
        problem
        for state in upstream_states(ticket.stack, ticket.environment)
        if (problem := policy.stacks.upstream_problem(state))
    ]
    if waiting:
        raise policy.ApplyRefused(
            f"stack {ticket.stack.name} waits for its dependencies: " + "; ".join(waiting),
            TicketStatus.APPROVED,
        )


def refuse_start(
    ticket: Ticket,
    run: TerraformRun,
    refusal: policy.ApplyRefused,
    *,
    noted: Sequence[tuple[str, dt.datetime]] = (),
) -> None:
    """The apply is not started: the run ends cancelled and the ticket goes back (the times
    the refusal names, ``noted``, reach each person told in their own zone)."""
    reason = f"the apply was not started: {refusal.message}"
    run.status = RunStatus.CANCELLED
    run.finished_at = timezone.now()
    run.error = reason
    run.log = f"error: {reason}\n"
    run.save(update_fields=["status", "finished_at", "error", "log"])
    audit_record(
        actor="worker",
        action="run.refuse_start",
        ticket=ticket,
        data={"run": run.pk, "kind": run.kind, "reason": refusal.message},
    )
    scheduled = ticket.scheduled_for is not None
    if scheduled:  # the beat task handed it over: the schedule is spent, its people are told
        ticket.scheduled_for = None
        ticket.save(update_fields=["scheduled_for", "updated_at"])
    transition(ticket, refusal.back_to, actor="worker", reason=reason, data={"run": run.pk})
    if scheduled:
        notices.schedule_missed(ticket, people=schedulers_of(ticket), reason=reason, noted=noted)
    if refusal.back_to == TicketStatus.AWAITING_APPROVAL:
        notices.approval_needed(ticket)  # its approvals no longer hold: asked again
