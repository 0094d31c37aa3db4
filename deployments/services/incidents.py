"""Incident paths (issue 22): an immediate rollback started by its approving lead, or by
itself on approval, as its environment says (policy.incidents). Every start is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from deployments import policy
from deployments.models import TerraformRun, Ticket
from deployments.selectors import stray_approvals, votes_for
from deployments.selectors.windows import freezes_for, plan_is_stale
from deployments.services.audit import audit_record
from deployments.services.runs.start import apply_start


def rollback_started_by_approver(ticket: Ticket, run: TerraformRun, *, actor: Any) -> None:
    """Audit that a lead started the rollback they approved (not a deployer of the
    environment: Environment.immediate_rollback_start = "approver")."""
    audit_record(
        actor=actor,
        action="rollback.start_by_approver",
        ticket=ticket,
        data={
            "run": run.pk,
            "reason": f"{ticket.environment.name} lets the approving lead start an immediate "
            "rollback (immediate_rollback_start = approver)",
        },
    )


def rollback_start_on_approval(ticket: Ticket, *, actor: Any, now: dt.datetime) -> None:
    """After the approval that made an immediate rollback approved, in the same transaction:
    where its environment says so (immediate_rollback_start = on_approval), queue the apply
    with the same checks a deploy makes. A refusal leaves it approved, audited with why."""
    if not policy.starts_on_approval(ticket, now):
        return
    plan = ticket.current_plan
    try:
        if plan is None or not plan.plan_sha256:
            raise policy.PolicyError("there is no successful plan to apply")
        if plan_is_stale(ticket):
            raise policy.PolicyError(policy.STALE_PLAN_MESSAGE)
        policy.check_apply_may_start(
            ticket,
            now=now,
            plan_sha256=plan.plan_sha256,
            current_plan_sha256=plan.plan_sha256,
            votes=votes_for(ticket, plan),
            stray_approvals=stray_approvals(ticket, plan),
            freezes=freezes_for(ticket.environment, now),
            branch=settings.INFRA_BRANCH,
        )
        run = apply_start(ticket, actor=actor, wait_if_busy=True)
    except policy.PolicyError as exc:
        audit_record(
            actor=actor,
            action="rollback.start_on_approval_refused",
            ticket=ticket,
            data={"reason": exc.message},
        )
        return
    audit_record(
        actor=actor,
        action="rollback.start_on_approval",
        ticket=ticket,
        data={
            "run": run.pk if run is not None else None,
            "reason": f"{ticket.environment.name} starts an approved immediate rollback at "
            "once (immediate_rollback_start = on_approval)",
        },
    )
