"""Rollback to the last known good deployment (SPEC §1, issue 9).

A rollback is an ordinary ticket of change type ``rollback``: it re-plans and applies the
commit and var-file of the environment's last known good deployment before the rolled-back
ticket's own, under policy (policy.rollback_mode and friends). When its apply succeeds the
original ticket ends ``rolled_back``, its deployment is marked rolled back, and a
post-mortem is due 24 hours later.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import policy
from deployments.choices import (
    ALLOWED_TRANSITIONS,
    ChangeType,
    RollbackMode,
    RunKind,
    TicketStatus,
)
from deployments.models import (
    Deployment,
    DeploymentOutcome,
    FollowUpKind,
    TerraformRun,
    Ticket,
)
from deployments.policy import risk
from deployments.selectors import rollback_choice, user_roles
from deployments.services import notices
from deployments.services._base import locked_ticket, transition
from deployments.services.audit import audit_record
from deployments.services.followups import follow_up_open
from deployments.services.runs.start import plan_start

# The post-mortem a rollback leaves on the rolled-back ticket is due this long after the
# rollback deployed (SPEC §1: "hold a post-mortem within 24 hours").
POST_MORTEM_DUE = policy.EMERGENCY_REVIEW_DUE


def rollback_open(*, ticket_id: int, actor: Any, source: str = "api") -> Ticket:
    """Open (and start planning) the rollback of a deployed ticket. 403 for someone who may
    not, 409 naming why when there is nothing safe to return to or one is already open."""
    with transaction.atomic():
        original = locked_ticket(ticket_id)
        choice = rollback_choice(original)
        policy.check_may_roll_back(
            original,
            choice.facts,
            user_roles=user_roles(actor),
            superuser=bool(actor.is_superuser),
        )
        assert choice.own is not None and choice.target is not None  # checked above
        target = Deployment.objects.select_related("ticket").get(pk=choice.target.deployment_id)
        now = timezone.now()
        minutes = settings.ROLLBACK_IMMEDIATE_MINUTES
        mode = policy.rollback_mode(choice.own.finished_at, now, immediate_minutes=minutes)
        until = policy.rollback_immediate_until(choice.own.finished_at, immediate_minutes=minutes)
        env = original.environment
        ticket = Ticket.objects.create(
            title=f"Roll back #{original.pk}: {original.title}"[:200],
            description=_description(original, target, mode),
            environment=env,
            stack_id=original.stack_id,
            commit_sha=target.commit_sha,
            change_type=ChangeType.ROLLBACK,
            author=actor,
            rollback_of=original,
            rollback_target=target,
            rollback_mode=mode,
            rollback_immediate_until=until if mode == RollbackMode.IMMEDIATE else None,
            rollback_plan=risk.clean_rollback_plan(
                {
                    "steps": (
                        f"This ticket is itself the rollback: it returns {env.name} to "
                        f"deployment #{target.pk} (commit {target.commit_sha[:12]}). To undo "
                        f"it, file a normal ticket for commit {original.commit_sha[:12]}."
                    ),
                    "data_considerations": (
                        "Terraform re-applies the earlier configuration; data written since "
                        "(databases, buckets) is not restored."
                    ),
                }
            ),
            source=source,
        )
        why = (
            f"immediate: opened within {minutes} minutes of the deployment it undoes; until "
            f"{until.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC one Tech Lead or DevOps Lead "
            "approves and it may deploy outside the change window and during a freeze; "
            "after that the planned path applies"
            if mode == RollbackMode.IMMEDIATE
            else "planned: the environment's normal approval rule, windows and freezes apply"
        )
        audit_record(
            actor=actor,
            action="ticket.create",
            ticket=ticket,
            data={
                "environment": env.name,
                "commit_sha": ticket.commit_sha,
                "change_type": ticket.change_type,
                "source": source,
                "rollback_of": original.pk,
                "rollback_target": target.pk,
                "rollback_mode": mode,
                "rollback_immediate_until": until.isoformat()
                if mode == RollbackMode.IMMEDIATE
                else None,
                "reason": why,
            },
        )
        audit_record(
            actor=actor,
            action="rollback.open",
            ticket=original,
            data={
                "rollback": ticket.pk,
                "rollback_target": target.pk,
                "commit_sha": target.commit_sha,
                "rollback_mode": mode,
            },
        )
        plan_start(ticket, actor=actor)
        rule = policy.rule_for(ticket, now=now)
        if rule.required:
            notices.rollback_opened(
                ticket, actor=actor, original=original, target=target, mode=mode, rule=rule
            )
    return ticket


def _description(original: Ticket, target: Deployment, mode: str) -> str:
    when = target.finished_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Rollback of ticket #{original.pk} ({original.title}, commit "
        f"{original.commit_sha[:12]}) to the last known good deployment #{target.pk} of "
        f"{original.environment.name}: commit {target.commit_sha} with var-file "
        f"{target.var_file}, deployed {when} by ticket #{target.ticket_id} "
        f"({target.ticket.title}).\n\nMode: {mode}."
    )


def expected_var_file_sha256(run: TerraformRun) -> str:
    """The var-file digest a rollback's plan must find at its commit ("" for other runs or
    when the target deployment recorded none)."""
    ticket = run.ticket
    if run.kind != RunKind.PLAN or not ticket.rollback_target_id:
        return ""
    target = Deployment.objects.only("commit_sha", "var_file", "var_file_sha256").get(
        pk=ticket.rollback_target_id
    )
    if (target.commit_sha, target.var_file) != (run.commit_sha, run.var_file):
        return ""
    return target.var_file_sha256


def rollback_deployed(ticket: Ticket, run: TerraformRun) -> None:
    """After a rollback's apply succeeded, in the transaction recording it: the original
    ticket ends rolled_back, its deployment is marked rolled back by this one, and a
    post-mortem is due on it 24 h later. Leads are told. Anything else: nothing."""
    if ticket.change_type != ChangeType.ROLLBACK or ticket.rollback_of_id is None:
        return
    original = locked_ticket(ticket.rollback_of_id)
    mine = Deployment.objects.filter(run=run).first()
    at = run.finished_at or timezone.now()
    undone = (
        Deployment.objects.select_for_update()
        .filter(ticket=original, outcome=DeploymentOutcome.SUCCEEDED, rolled_back_at__isnull=True)
        .order_by("-finished_at", "-pk")
        .first()
    )
    if undone is not None:
        undone.rolled_back_at = at
        undone.rolled_back_by = mine
        undone.save(update_fields=["rolled_back_at", "rolled_back_by"])
    reason = (
        f"rolled back by ticket #{ticket.pk}: {original.environment.name} is back at commit "
        f"{ticket.commit_sha[:12]}"
        + (f" (deployment #{ticket.rollback_target_id})" if ticket.rollback_target_id else "")
    )
    moved = TicketStatus.ROLLED_BACK in ALLOWED_TRANSITIONS[TicketStatus(original.status)]
    if moved:
        transition(
            original,
            TicketStatus.ROLLED_BACK,
            actor="worker",
            reason=reason,
            data={"rollback": ticket.pk, "run": run.pk},
        )
    follow_up = follow_up_open(
        ticket=original,
        kind=FollowUpKind.POST_MORTEM,
        due_at=at + POST_MORTEM_DUE,
        actor="worker",
        deployment_run=run,
    )
    audit_record(
        actor="worker",
        action="rollback.deployed",
        ticket=original,
        data={
            "rollback": ticket.pk,
            "deployment": mine.pk if mine else None,
            "rolled_back_deployment": undone.pk if undone else None,
            "follow_up": follow_up.pk,
            "ticket_moved": moved,
            "reason": reason,
        },
    )
    notices.rollback_deployed(ticket, original=original, reason=reason, follow_up=follow_up)
