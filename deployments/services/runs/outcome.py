"""Recording a run's outcome (log, exit code, plan file and digest) and what it means for
its ticket: the state machine's moves here, then the steps of services.lifecycle."""

from __future__ import annotations

import logging
import time

from django.core.files.base import ContentFile
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from deployments import terraform as tf
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import TerraformRun, Ticket
from deployments.services import lifecycle, notices, policies, replans
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.deployments import deployment_monitoring_failed, deployment_record
from deployments.services.runs import start as runs
from deployments.services.runs.branch import branch_record
from deployments.services.runs.logstream import (
    fold_log,
    reset_connection,
    storable,
)

log = logging.getLogger(__name__)


# Pauses between attempts to record a run's outcome while the database is unreachable
# (about ten minutes in all); after the last one the lock is released and the reconciler
# marks the run interrupted.
_FINISH_RETRY_DELAYS: tuple[float, ...] = (0.5, 1, 2, 4, 8, 15, 30, 30, 60, 60, 120, 120, 150)


def run_finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
    fence: int = 0,
    log_tail: str = "",
    applied: tf.ApplyResult | None = None,
    on_branch: bool | None = None,
) -> None:
    """Record a run's outcome (log, exit code, plan file and digest) and move its ticket on.

    Retried with backoff while the database is unreachable: a run never stays running
    because one write failed. ``log_tail`` is output no log chunk holds yet; ``on_branch``
    is a plan's branch_check, asked once Terraform finished.
    """
    delays = list(_FINISH_RETRY_DELAYS)
    error, log_tail = storable(error), storable(log_tail)
    while True:
        try:
            _finish(
                run_id=run_id,
                exit_code=exit_code,
                error=error,
                plan=plan,
                stale=stale,
                terraform_version=terraform_version,
                fence=fence,
                log_tail=log_tail,
                applied=applied,
                on_branch=on_branch,
            )
            return
        except (OperationalError, InterfaceError):
            if not delays:
                raise
            log.exception("could not record the outcome of run %s; retrying", run_id)
            reset_connection()
            time.sleep(delays.pop(0))


def _finish(
    *,
    run_id: int,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    stale: bool,
    terraform_version: str,
    fence: int,
    log_tail: str,
    applied: tf.ApplyResult | None = None,
    on_branch: bool | None = None,
) -> None:
    with transaction.atomic():
        ticket_id = TerraformRun.objects.values_list("ticket_id", flat=True).get(pk=run_id)
        ticket = locked_ticket(ticket_id)  # lock order: ticket → run → audit head
        if ticket.rollback_of_id is not None:
            # A rollback's apply ends its original ticket: lock it now, before the audit
            # head, so the order stays ticket(s) → run → audit head.
            locked_ticket(ticket.rollback_of_id)
        run = TerraformRun.objects.select_for_update().get(pk=run_id)
        if run.fence != fence or run.status not in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
            log.warning("run %s is not this worker's to finish (fence %s); ignored", run_id, fence)
            return
        if run.status == RunStatus.INTERRUPTED:
            _finish_after_interrupt(
                ticket,
                run,
                exit_code=exit_code,
                error=error,
                plan=plan,
                terraform_version=terraform_version,
                log_tail=log_tail,
            )
            return
        succeeded = exit_code == 0 and not error
        if run.kind == RunKind.CHECK and exit_code == 2:
            succeeded = False
        run.status = RunStatus.SUCCEEDED if succeeded else RunStatus.FAILED
        run.exit_code = exit_code
        run.error = error
        run.finished_at = timezone.now()
        run.terraform_version = terraform_version
        _keep_plan(run, plan)
        run.save()
        fold_log(run, tail=log_tail)
        audit_record(
            actor="worker",
            action="run.finish",
            ticket=ticket,
            data={
                "run": run.pk,
                "kind": run.kind,
                "status": run.status,
                "exit_code": exit_code,
                "plan_sha256": run.plan_sha256,
                "error": error,
            },
        )
        if run.kind == RunKind.APPLY:
            deployment_record(ticket, run, applied)
        if run.status == RunStatus.SUCCEEDED:
            branch_record(ticket, on_branch, run=run, moment="plan end")
        _advance_ticket(ticket, run, stale=stale)


def _keep_plan(run: TerraformRun, plan: tf.PlanResult | None) -> None:
    if plan is not None:
        run.plan_sha256 = plan.plan_sha256
        run.summary = plan.summary
        run.has_changes = plan.has_changes
        run.base_state = plan.base_state
        run.plan_file.save(f"run-{run.pk}.tfplan", ContentFile(plan.plan_bytes), save=False)
        policies.policy_input_keep(run, plan)  # what the plan's policies read


def _finish_after_interrupt(
    ticket: Ticket,
    run: TerraformRun,
    *,
    exit_code: int,
    error: str,
    plan: tf.PlanResult | None,
    terraform_version: str,
    log_tail: str,
) -> None:
    """A run declared interrupted whose process finished after all: keep its real outcome
    (exit code, full log, error) next to the verdict, and tell people; the ticket is not
    moved on automatically."""
    ok = exit_code == 0 and not error and not (run.kind == RunKind.CHECK and exit_code == 2)
    outcome = "succeeded" if ok else f"failed (exit code {exit_code})"
    note = f"terraform {run.kind} finished after the run was marked interrupted: it {outcome}"
    if error:
        note += f": {error}"
    run.exit_code = exit_code
    run.terraform_version = terraform_version
    run.error = f"{run.error}\n\nThen {note}." if run.error else f"{note}."
    _keep_plan(run, plan)
    run.save()
    fold_log(run, tail=f"{log_tail}note: {note}\n")
    audit_record(
        actor="worker",
        action="run.finish_after_interrupt",
        ticket=ticket,
        data={
            "run": run.pk,
            "kind": run.kind,
            "exit_code": exit_code,
            "outcome": "succeeded" if ok else "failed",
            "plan_sha256": run.plan_sha256,
            "error": error,
        },
    )
    newer = ticket.runs.filter(pk__gt=run.pk).exists()
    if newer or ticket.status not in (TicketStatus.APPLY_FAILED, TicketStatus.PLAN_FAILED):
        return
    if run.kind == RunKind.PLAN:
        advice = "run a new plan for this ticket"
    else:
        effect = "may have applied the plan" if ok else "may have changed part of the environment"
        advice = (
            f"the environment {effect}. Check the state (terraform state list; force-unlock "
            "if a lock remains), then run a new plan for this ticket (one showing no "
            "changes means the apply took effect) and have it approved again"
        )
    ticket.status_reason = f"{run.kind} run #{run.pk} was marked interrupted, then {note}; {advice}"
    ticket.save(update_fields=["status_reason", "updated_at"])


def _advance_ticket(ticket: Ticket, run: TerraformRun, *, stale: bool = False) -> None:
    """What a finished run means for its ticket: the state machine's move, then, after a
    successful run, the steps services.lifecycle lists for it (in this transaction)."""
    env = ticket.environment
    ok = run.status == RunStatus.SUCCEEDED
    if run.kind == RunKind.PLAN:
        if ticket.status != TicketStatus.PLANNING:
            return  # cancelled while planning: the plan is kept, the ticket stays put
        if not ok:
            transition(
                ticket,
                TicketStatus.PLAN_FAILED,
                actor="worker",
                reason=run.error or "terraform plan failed",
                data={"run": run.pk},
            )
            return
        ticket.current_plan = run
        ticket.save(update_fields=["current_plan"])
        lifecycle.run_steps(lifecycle.after_plan, ticket, run)
        return
    if run.kind == RunKind.APPLY:
        if ok:
            ticket.deployed_at = run.finished_at
            ticket.save(update_fields=["deployed_at"])
            transition(
                ticket,
                TicketStatus.MONITORING,
                actor="worker",
                reason="applied; running post-apply checks"
                if env.auto_deploy
                else "applied; monitoring",
                data={"run": run.pk},
            )
            lifecycle.run_steps(lifecycle.after_apply, ticket, run)
        else:
            reason = run.error or "terraform apply failed"
            transition(
                ticket,
                TicketStatus.APPLY_FAILED,
                actor="worker",
                reason=reason,
                data={"run": run.pk, "stale_plan": stale},
            )
            notices.deploy_failed(ticket, run, reason=reason)
            replans.schedules_plan_stale(ticket, run)  # a failed apply may have changed state
        transaction.on_commit(lambda: runs.environment_release(environment_id=env.pk))
        return
    # Post-apply check.
    if ticket.status != TicketStatus.MONITORING:
        return
    if ok:
        transition(
            ticket,
            TicketStatus.COMPLETED,
            actor="worker",
            reason="post-apply plan shows no changes",
            data={"run": run.pk},
        )
        lifecycle.run_steps(lifecycle.after_check, ticket, run)
    else:
        reason = run.error or "post-apply check failed"
        deployment_monitoring_failed(ticket, reason=reason, at=run.finished_at)
        transition(
            ticket,
            TicketStatus.APPLY_FAILED,
            actor="worker",
            reason=reason,
            data={"run": run.pk},
        )
        notices.deploy_failed(ticket, run, reason=f"post-apply check: {reason}")
