"""Starting Terraform runs: plan, apply (one per environment) and post-apply check."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from deployments import policy
from deployments.choices import RunKind, RunStatus, TicketStatus
from deployments.models import Approval, Deployment, Environment, TerraformRun, Ticket
from deployments.services import notices
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record

log = logging.getLogger(__name__)


def plan_start(ticket: Ticket, *, actor: Any, reason: str = "") -> TerraformRun:
    """Queue a plan for a locked ticket (it becomes planning; earlier approvals are void).

    ``reason`` is why a person re-plans; it is recorded on the voided approvals."""
    env = ticket.environment
    replaced = ticket.current_plan_id
    transition(
        ticket,
        TicketStatus.PLANNING,
        actor=actor,
        reason=reason,
        data={"replaces_plan_run": replaced} if replaced else None,
    )
    ticket.current_plan = None
    ticket.save(update_fields=["current_plan"])
    run = TerraformRun.objects.create(
        ticket=ticket,
        environment=env,
        stack_id=ticket.stack_id,
        kind=RunKind.PLAN,
        commit_sha=ticket.commit_sha,
        workspace=env.workspace,
        var_file=plan_var_file(ticket),
        requested_by=actor if getattr(actor, "pk", None) else None,
    )
    audit_record(
        actor=actor, action="run.queue", ticket=ticket, data={"run": run.pk, "kind": "plan"}
    )
    _void_approvals(ticket, run, actor=actor, why=reason)
    dispatch_on_commit(run.pk)
    return run


def plan_var_file(ticket: Ticket) -> str:
    """The var-file a ticket's plan reads: a rollback's is the one its target deployment
    applied (it may since have moved); every other ticket's is its stack's for the
    environment (the environment's own when the stack has no var-file pattern)."""
    if ticket.rollback_target_id:
        target = Deployment.objects.only("var_file").get(pk=ticket.rollback_target_id)
        return target.var_file
    return ticket.stack.var_file_for(ticket.environment.name, ticket.environment.var_file)


def _void_approvals(ticket: Ticket, run: TerraformRun, *, actor: Any, why: str = "") -> None:
    """Approvals bind to one saved plan: a new plan voids them (kept, marked, visible),
    with who re-planned and why."""
    standing = list(
        Approval.objects.filter(ticket=ticket, voided_at__isnull=True).select_related("approver")
    )
    if not standing:
        return
    who = actor.get_username() if hasattr(actor, "get_username") else str(actor)
    reason = f"plan run {run.pk} replaced the approved plan (re-planned by {who})"
    if why:
        reason = f"{reason}: {why}"
    void_field = Approval._meta.get_field("void_reason")
    reason = reason[: void_field.max_length]
    Approval.objects.filter(pk__in=[a.pk for a in standing]).update(
        voided_at=timezone.now(), void_reason=reason
    )
    audit_record(
        actor=actor,
        action="approval.void",
        ticket=ticket,
        data={
            "approvals": [a.pk for a in standing],
            "approvers": [a.approver.get_username() for a in standing],
            "reason": reason,
        },
    )


def dispatch_on_commit(run_id: int) -> None:
    """Send the run to a worker once the transaction that created it has committed."""
    transaction.on_commit(lambda: run_dispatch(run_id=run_id))


def run_dispatch(*, run_id: int) -> None:
    """Send a queued run to the Terraform queue. A broker outage is logged, not raised:
    the reconciler sends queued runs again."""
    from deployments.tasks import run_execute  # tasks import services

    TerraformRun.objects.filter(pk=run_id).update(dispatch_count=F("dispatch_count") + 1)
    try:
        run_execute.apply_async(args=[run_id], retry=False)
    except Exception:
        log.exception("could not send run %s to the broker; the reconciler will retry", run_id)


def apply_start(ticket: Ticket, *, actor: Any, wait_if_busy: bool = False) -> TerraformRun | None:
    """Queue the apply of the ticket's current plan, unless the environment is busy.

    The partial unique index on active applies per environment is the lock: a
    second apply cannot even be written while one is queued or running.
    """
    plan_run = ticket.current_plan
    if plan_run is None or plan_run.status != RunStatus.SUCCEEDED or not plan_run.plan_sha256:
        raise policy.PolicyError("the ticket has no successful plan to apply")
    newer = ticket.runs.filter(kind=RunKind.PLAN, pk__gt=plan_run.pk).exists()
    if newer:
        raise policy.PolicyError("a newer plan exists for this ticket; it must be approved first")
    env = ticket.environment
    waiting = _stack_may_not_apply(ticket)
    if waiting:
        if wait_if_busy:
            ticket.status_reason = f"{waiting}; this ticket will deploy when it is free"
            ticket.save(update_fields=["status_reason"])
            return None
        raise policy.PolicyError(waiting)
    try:
        with transaction.atomic():
            run = TerraformRun.objects.create(
                ticket=ticket,
                environment=env,
                stack_id=ticket.stack_id,
                kind=RunKind.APPLY,
                plan=plan_run,
                commit_sha=plan_run.commit_sha,
                workspace=plan_run.workspace,
                var_file=plan_run.var_file,
                requested_by=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError:
        busy = (
            TerraformRun.objects.filter(
                environment=env,
                stack_id=ticket.stack_id,
                kind=RunKind.APPLY,
                status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
            )
            .select_related("ticket")
            .first()
        )
        who = f"ticket #{busy.ticket_id} ({busy.ticket.title})" if busy else "another ticket"
        message = f"{env.name} is busy: {who} is applying; this ticket will deploy when it is free"
        if wait_if_busy:
            ticket.status_reason = message
            ticket.save(update_fields=["status_reason"])
            return None
        raise policy.PolicyError(f"{env.name} is busy: {who} is applying") from None
    bypass = policy.window_bypass_note(ticket, timezone.now())
    transition(
        ticket,
        TicketStatus.APPLYING,
        actor=actor,
        reason=f"applying plan {plan_run.plan_sha256[:12]}",
        data={
            "run": run.pk,
            "plan_run": plan_run.pk,
            "plan_sha256": plan_run.plan_sha256,
            **({"window": bypass} if bypass else {}),
        },
    )
    notices.deploy_started(ticket, run, actor=actor)
    dispatch_on_commit(run.pk)
    return run


def _stack_may_not_apply(ticket: Ticket) -> str:
    """Why the ticket's stack may not start an apply in its environment now, or "": a stack
    it depends on is mid-deployment there, or the environment already runs as many applies
    of other stacks as it allows (Environment.max_concurrent_applies; docs/stacks.md). The
    environment row stays locked to the end of the caller's transaction, so two stacks
    asking at once are answered one after the other."""
    from deployments.selectors.stacks import upstream_states  # selectors import models only

    env = Environment.objects.select_for_update().get(pk=ticket.environment_id)
    stack = ticket.stack
    problems = [
        problem
        for state in upstream_states(stack, env)
        if (problem := policy.stacks.upstream_problem(state))
    ]
    if problems:
        return f"stack {stack.name} waits for its dependencies: " + "; ".join(problems)
    if env.max_concurrent_applies:
        others = list(
            TerraformRun.objects.filter(
                environment=env,
                kind=RunKind.APPLY,
                status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
            )
            .exclude(stack_id=ticket.stack_id)
            .select_related("stack")
            .order_by("pk")
        )
        if len(others) >= env.max_concurrent_applies:
            names = ", ".join(f"{r.stack.name} (ticket #{r.ticket_id})" for r in others)
            return (
                f"{env.name} is busy: {names} applying, and {env.name} allows "
                f"{env.max_concurrent_applies} apply at a time across its stacks"
            )
    return ""


def check_start(ticket: Ticket, apply_run: TerraformRun) -> None:
    """Queue the post-apply check: a re-plan that must find nothing left to change."""
    assert apply_run.plan is not None
    run = TerraformRun.objects.create(
        ticket=ticket,
        environment=ticket.environment,
        stack_id=ticket.stack_id,
        kind=RunKind.CHECK,
        plan=apply_run.plan,
        commit_sha=apply_run.commit_sha,
        workspace=apply_run.workspace,
        var_file=apply_run.var_file,
    )
    audit_record(
        actor="worker", action="run.queue", ticket=ticket, data={"run": run.pk, "kind": "check"}
    )
    dispatch_on_commit(run.pk)


def check_after_apply(ticket: Ticket, apply_run: TerraformRun) -> None:
    """After an apply (services.lifecycle.after_apply): in an environment that deploys by
    itself (dev), the post-apply check instead of a monitoring period."""
    if ticket.environment.auto_deploy:
        check_start(ticket, apply_run)


def environment_release(*, environment_id: int) -> None:
    """Start the next auto-deploy ticket that waited while the environment was busy.

    Its plan may predate the apply that just finished, so it is planned again first
    (in an environment that needs no approval a new plan is no loss), never applied stale.
    """
    with transaction.atomic():
        waiting = (
            Ticket.objects.select_for_update()
            .filter(
                environment_id=environment_id,
                status=TicketStatus.APPROVED,
                environment__auto_deploy=True,
            )
            .order_by("created_at", "id")
            .first()
        )
        if waiting is None or not policy.auto_deploys(waiting.environment):
            return  # an approval rule or a window means a person deploys, never the release
        ticket = locked_ticket(waiting.pk)
        last_apply = (
            TerraformRun.objects.filter(
                environment_id=environment_id, kind=RunKind.APPLY, status=RunStatus.SUCCEEDED
            )
            .order_by("-finished_at")
            .first()
        )
        plan_run = ticket.current_plan
        if (
            plan_run
            and last_apply
            and last_apply.finished_at
            and plan_run.created_at < last_apply.finished_at
        ):
            plan_start(ticket, actor="system")
            return
        try:
            apply_start(ticket, actor="system", wait_if_busy=True)
        except policy.PolicyError:
            plan_start(ticket, actor="system")


# --- recovery ----------------------------------------------------------------------
