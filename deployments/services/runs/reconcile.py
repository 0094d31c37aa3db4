"""Recovery: a run whose worker was lost ends interrupted (never silently re-run), and the
beat task re-sends queued runs nobody picked up."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Environment, TerraformRun
from deployments.services import notices
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.plans import speculative_plans_reconcile
from deployments.services.runs import start as runs
from deployments.services.runs.logstream import (
    fold_log,
)
from deployments.services.stacks import stack_lock

log = logging.getLogger(__name__)


def run_interrupt(*, run_id: int, reason: str, fence: int | None = None) -> bool:
    """Mark a run whose worker was lost as interrupted, and tell its ticket what to do.

    With ``fence``, only the claim holding that fencing token is interrupted.
    """
    with transaction.atomic():
        ticket_id = TerraformRun.objects.filter(pk=run_id).values_list("ticket_id", flat=True)
        if not ticket_id:
            return False
        ticket = locked_ticket(ticket_id[0])  # lock order: ticket → run → audit head
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING or (fence is not None and run.fence != fence):
            return False
        run.status = RunStatus.INTERRUPTED
        run.finished_at = timezone.now()
        run.error = reason
        if run.kind == RunKind.APPLY:
            run.error = (
                f"{reason}. The apply may have changed part of the environment and may hold the "
                "state lock. Check the state (terraform state list; force-unlock if a lock "
                "remains), "
                "then run a new plan for this ticket and have it approved again."
            )
        run.save()
        fold_log(run, tail=f"\nerror: {run.error}\n")
        audit_record(
            actor="system",
            action="run.interrupt",
            ticket=ticket,
            data={"run": run.pk, "kind": run.kind, "reason": reason, "fence": run.fence},
        )
        if run.kind == RunKind.PLAN and ticket.status == TicketStatus.PLANNING:
            transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="system",
                reason=f"plan interrupted: {reason}; run a new plan",
            )
        elif run.kind == RunKind.APPLY and ticket.status == TicketStatus.APPLYING:
            transition(ticket, TicketStatus.APPLY_FAILED, actor="system", reason=run.error)
            notices.deploy_failed(ticket, run, reason=run.error)
        elif run.kind == RunKind.CHECK and ticket.status == TicketStatus.MONITORING:
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="system",
                reason=f"post-apply check interrupted: {reason}",
            )
        return True


def runs_reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Beat task: interrupt runs whose worker is gone; re-send queued runs (and speculative
    plans) never picked up, to their environment's queue.

    A plan or check is gone when its heartbeat is older than RUN_HEARTBEAT_TIMEOUT. An
    apply is gone only when its environment lock is free: a stalled worker (SIGSTOP, a long
    GC, Terraform waiting on a state lock) still holds it and is left alone, however
    silent, while a dead one is noticed at the next beat.
    """
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    interrupted = 0
    for run_id in (
        TerraformRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
        .exclude(kind=RunKind.APPLY)
        .values_list("pk", flat=True)
    ):
        interrupted += run_interrupt(
            run_id=run_id,
            reason=(
                f"its worker stopped reporting for more than {settings.RUN_HEARTBEAT_TIMEOUT} s"
            ),
        )
    for run_id, env_id, stack_id, fence in TerraformRun.objects.filter(
        status=RunStatus.RUNNING, kind=RunKind.APPLY
    ).values_list("pk", "environment_id", "stack_id", "fence"):
        with stack_lock(env_id, stack_id) as env_lock:
            if not env_lock.try_acquire():
                continue  # its worker lives, perhaps stalled: never start a second apply
            interrupted += run_interrupt(
                run_id=run_id,
                reason="its worker is gone (it no longer holds the environment lock)",
                fence=fence,
            )
    resent = 0
    for run_id in TerraformRun.objects.filter(
        status=RunStatus.QUEUED,
        created_at__lt=now - dt.timedelta(seconds=settings.RUN_RESEND_AFTER),
    ).values_list("pk", flat=True):
        runs.run_dispatch(run_id=run_id)
        resent += 1
    for env_id in Environment.objects.filter(auto_deploy=True).values_list("pk", flat=True):
        runs.environment_release(environment_id=env_id)
    speculative = speculative_plans_reconcile(now=now)
    return {
        "interrupted": interrupted + speculative["interrupted"],
        "resent": resent + speculative["resent"],
    }
